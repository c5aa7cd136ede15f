"""fastnn.distribution in one process (no mpiexec): the API, the sharding arithmetic, the metric-state
packing the ranks add up, and that a script with a DataParallel runs unchanged as one process.
The MPI runs themselves are in test_distribution_mpi.py."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, metrics
from fastnn.distribution import DataParallel, sharding, states


def test_one_process_world():
    d = fastnn.distribution
    assert d.rank() == 0 and d.world_size() == 1 and d.list_devices() == ["cpu:0"]
    d.initialize(num_processes=1, process_id=0)
    with pytest.raises(ValueError, match="num_processes=2"):
        d.initialize(num_processes=2)
    x = np.arange(6.0).reshape(2, 3)
    s = d.all_sum(x)
    assert np.array_equal(s, x) and s is not x
    d.barrier()


def test_data_parallel_arguments():
    assert DataParallel(auto_shard_dataset=False).auto_shard_dataset is False
    with pytest.raises(ValueError, match="bucket_bytes"):
        DataParallel(bucket_bytes=0)
    with pytest.raises(TypeError, match="DataParallel"):
        fastnn.distribution.set_distribution("data")
    with pytest.raises(ValueError, match="devices"):
        fastnn.distribution.set_distribution(DataParallel(devices=["cpu:0", "cpu:1"]))
    fastnn.distribution.set_distribution(None)


def test_script_runs_as_one_process(tmp_path):
    """With a DataParallel set but no mpiexec, fit/evaluate/predict/save are exactly the one-process ones."""
    def train(dist):
        fastnn.distribution.set_distribution(dist)
        try:
            fastnn.utils.set_random_seed(1)
            model = fastnn.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            x = np.random.default_rng(0).normal(size=(50, 4)).astype("float32")
            y = np.arange(50) % 3
            h = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
            model.save(str(tmp_path / "m.keras"))
            return ([w.numpy() for w in model.weights], h.history, model.evaluate(x, y, verbose=0),
                    model.predict(x, verbose=0))
        finally:
            fastnn.distribution.set_distribution(None)
    with_dp, plain = train(DataParallel()), train(None)
    assert fastnn.distribution.distribution() is None
    for a, b in zip(with_dp[0], plain[0]):
        assert np.array_equal(a, b)
    assert with_dp[1] == plain[1] and with_dp[2] == plain[2]
    assert np.array_equal(with_dp[3], plain[3])
    assert (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("n, size", [(1, 2), (2, 3), (37, 2), (64, 3), (5, 7)])
def test_shares_cover_every_row_once(n, size):
    b = sharding.bounds(n, size)
    assert b[0] == 0 and b[-1] == n and all(b[r] <= b[r + 1] <= b[r] + -(-n // size) for r in range(size))
    assert [sharding.share(n, r, size) for r in range(size)] == list(zip(b[:-1], b[1:]))


def test_shard_loader_presharded_rows():
    """Pre-sharded: each rank takes its share of every global batch from its own rows; the epoch lasts as long
    as the rank with the most batches; the global row count and this rank's first row follow every rank."""
    counts, size, bs = [11, 4, 7], 3, 5            # shares of a batch of 5: 1, 2, 2 rows
    steps = []
    for r, n in enumerate(counts):
        x = np.arange(n, dtype=np.float32)[:, None]
        loader = sharding.ShardLoader([x], [np.arange(n)], bs, True, 9, r, size, counts=counts)
        assert len(loader) == 11  # rank 0: 11 rows, 1 per step
        got = []
        for xb, yb in loader.epoch(0):
            got.append((len(xb[0]), loader.global_rows, loader.row_start))
        assert sorted(loader.epoch_indices(0)) == list(range(n))
        steps.append(got)
    for k in range(11):
        rows = [steps[r][k][0] for r in range(size)]
        assert all(steps[r][k][1] == sum(rows) for r in range(size))
        assert [steps[r][k][2] for r in range(size)] == [0, rows[0], rows[0] + rows[1]]
    assert [steps[1][k][0] for k in range(3)] == [2, 2, 0] and steps[2][3][0] == 1


def test_shard_loader_splits_the_one_process_batches():
    """The ranks' batches put together are the one-process loader's batches (same seed, same order)."""
    x = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    y = np.arange(23)
    whole = sharding.ShardLoader([x], [y], 5, True, 42, 0, 1)
    parts = [sharding.ShardLoader([x], [y], 5, True, 42, r, 3) for r in range(3)]
    assert len(whole) == len(parts[0]) == 5
    for epoch in (0, 3):
        batches = [list(p.epoch(epoch)) for p in parts]
        for k, (xb, yb) in enumerate(whole.epoch(epoch)):
            assert np.array_equal(np.concatenate([b[k][0][0] for b in batches]), xb[0])
            assert np.array_equal(np.concatenate([b[k][1][0] for b in batches]), yb[0])
        order = np.concatenate([p.epoch_indices(epoch) for p in parts])
        assert sorted(order) == list(range(23))
    from fastnn._pipeline import BatchLoader
    assert np.array_equal(whole.epoch_indices(2), BatchLoader(x, y, batch_size=5, seed=42).epoch_indices(2))


@pytest.mark.parametrize("make", [
    lambda: metrics.SparseCategoricalAccuracy(), lambda: metrics.Precision(thresholds=[0.3, 0.6]),
    lambda: metrics.Recall(), lambda: metrics.F1Score(average="macro"), lambda: metrics.Mean(),
    lambda: metrics.MeanSquaredError(), lambda: metrics.RootMeanSquaredError()])
def test_metric_states_add_up(make):
    """Two metrics' packed states added and unpacked give the metric of all the samples (what the ranks do)."""
    rng = np.random.default_rng(3)
    p = rng.random((20, 4)).astype(np.float32)
    sparse = isinstance(make(), metrics.SparseCategoricalAccuracy)
    y = rng.integers(0, 4, 20) if sparse else (rng.random((20, 4)) > 0.5).astype(np.float32)
    parts, whole = [make(), make()], make()
    if type(whole) is metrics.Mean:
        parts[0].update_state(p[:7])
        parts[1].update_state(p[7:])
        whole.update_state(p)
    else:
        parts[0].update_state(y[:7], p[:7])
        parts[1].update_state(y[7:], p[7:])
        whole.update_state(y, p)
    (a, saved), (b, _) = states.pack([parts[0]]), states.pack([parts[1]])
    assert states.state_keys(whole) and "thresholds" not in states.state_keys(whole)
    states.unpack(a + b, saved)
    np.testing.assert_allclose(parts[0].result(), whole.result(), rtol=1e-6)
    states.restore(saved)
    first = make()
    if type(first) is metrics.Mean:
        first.update_state(p[:7])
    else:
        first.update_state(y[:7], p[:7])
    np.testing.assert_allclose(parts[0].result(), first.result(), rtol=1e-6)


def test_bench_projection_cost_model():
    """fastnn-bench distributed's projection: the ring all-reduce terms and the overlap with backward."""
    from fastnn.bench import GROUPS, distributed as B
    assert GROUPS["distributed"] == "fastnn.bench.distributed"
    # 2 hosts, 1 GB/s, no latency: 2 (P-1)/P * 1e9 bytes = 1 s
    assert B.ring_allreduce_s(1e9, 2, 1.0, 0.0) == pytest.approx(1.0)
    assert B.ring_allreduce_s(0, 5, 1.0, 10.0, messages=3) == pytest.approx(3 * 2 * 4 * 10e-6)
    rows = B.project(compute_s=1.0, overlap_s=0.5, grad_bytes=2e9, buckets=1, last_bucket_bytes=1e8,
                     bandwidth_gbps=1.0, latency_us=0.0, hosts=(2, 64))
    (p2, c2, x2, e2), (p64, c64, x64, e64) = rows
    assert c2 == pytest.approx(2.0) and x2 == pytest.approx(1.5) and e2 == pytest.approx(1 / 2.5)
    assert c64 > c2 and e64 < e2
    # all of it hidden but the last bucket's exchange
    (_, _, x, e), = B.project(1.0, 10.0, 2e9, 1, 1e8, 1.0, 0.0, hosts=(2,))
    assert x == pytest.approx(0.1) and e == pytest.approx(1 / 1.1)


def test_launch_detection(monkeypatch):
    """Only a process started by an MPI launcher joins a job (and imports mpi4py)."""
    from fastnn.distribution import comm
    for var in comm._LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert not comm.launched()
    monkeypatch.setenv("PMI_SIZE", "2")
    assert comm.launched()
