"""fastnn.distribution under a real `mpiexec -n 2` (and 3): the scripts in tests/mpi_scripts/ are run
as an MPI job and as one process. Needs mpi4py and the mpiexec of this Python's environment (the mpich
wheel puts it next to the interpreter); skipped only when mpi4py is not installed."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py")

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "mpi_scripts")
ROOT = os.path.dirname(HERE)


def _mpiexec():
    for d in (os.path.join(sys.prefix, "bin"), os.path.dirname(sys.executable)):
        path = os.path.join(d, "mpiexec")
        if os.path.exists(path):
            return path
    pytest.fail(f"mpi4py is installed but there is no mpiexec in {sys.prefix}/bin (install the mpich wheel: "
                f"pip install fastnn[mpi])")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    import fastnn
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")  # the fastnn under test
    return env


def _run(args, ranks=None, timeout=120):
    cmd = [sys.executable] + args if ranks is None else [_mpiexec(), "-n", str(ranks), sys.executable] + args
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    return p, time.monotonic() - start


def _weights(npz):
    return [npz[k] for k in sorted((k for k in npz.files if k.startswith("arr_")), key=lambda k: int(k[4:]))]


def _train(tmp_path, name, ranks, *flags):
    out = tmp_path / name
    out.mkdir()
    p, _ = _run([os.path.join(SCRIPTS, "train_digits.py"), str(out), *flags], ranks)
    assert p.returncode == 0, p.stdout + p.stderr
    return p, [np.load(out / f"rank{r}.npz") for r in range(ranks or 1)], out


def test_two_ranks_equal_one_process(tmp_path):
    """CNN, uneven last batch (1346 = 21 x 64 + 2), callbacks: 2 ranks give the one-process weights and
    history to float32 rounding, the ranks are bit-identical, only rank 0 prints and writes."""
    flags = ["--model", "cnn", "--samples", "1346", "--epochs", "3", "--callbacks"]
    one, (single,), one_dir = _train(tmp_path, "one", None, *flags, "--save", str(tmp_path / "one.keras"))
    two, ranks, two_dir = _train(tmp_path, "two", 2, *flags, "--save", str(tmp_path / "two.keras"))
    assert int(single["world"]) == 1 and int(ranks[0]["world"]) == 2
    _same_everywhere(ranks)                              # replicas bit-identical
    _close_to(ranks, single)
    # EarlyStopping (min_delta=10: no epoch improves) stops both runs after 2 epochs, on every rank
    assert len(single["loss"]) == len(ranks[0]["loss"]) == len(ranks[1]["loss"]) == 2
    for key in ("loss", "val_loss", "accuracy", "evaluate"):
        np.testing.assert_allclose(ranks[0][key], single[key], rtol=1e-5)
        assert np.array_equal(ranks[0][key], ranks[1][key])
    np.testing.assert_allclose(ranks[0]["predict"], single["predict"], rtol=1e-4, atol=1e-6)
    assert np.array_equal(ranks[0]["predict"], ranks[1]["predict"])
    # exactly one progress output (rank 0's), and one early-stopping message
    assert two.stdout.count("Epoch 1/3") == 1 and two.stdout.count("Epoch 2/3") == 1, two.stdout
    assert two.stdout.count("early stopping") == one.stdout.count("early stopping") == 1, two.stdout
    assert two.stdout.count("Total params") == 1, two.stdout  # model.summary()
    with open(two_dir / "log.csv") as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs, written once
    assert (tmp_path / "two.keras").exists()


def _same_everywhere(ranks):
    for other in ranks[1:]:
        for a, b in zip(_weights(ranks[0]), _weights(other)):
            assert np.array_equal(a, b)


def _close_to(ranks, single, key="loss"):
    for a, b in zip(_weights(ranks[-1]), _weights(single)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ranks[-1][key], single[key], rtol=1e-5)


def test_three_ranks_batchnorm_class_weights_unseeded(tmp_path):
    """3 ranks with a last batch of 2 rows (one rank has none that step): BatchNormalization with the global
    batch's statistics and an MLP with class weights both equal one process, the ranks bit-identical;
    unseeded ranks (other initial weights on each) train identical replicas from rank 0's."""
    for name, flags in (("bn", ["--model", "bn"]), ("mlp", ["--class-weight"])):
        flags = flags + ["--samples", "1346", "--epochs", "2", "--verbose", "0"]
        _, ranks, _ = _train(tmp_path, name + "3", 3, *flags)
        _, (single,), _ = _train(tmp_path, name + "1", None, *flags)
        _same_everywhere(ranks)
        _close_to(ranks, single)
    _, ranks, _ = _train(tmp_path, "unseeded", 2, "--model", "cnn", "--epochs", "1", "--verbose", "0", "--unseeded")
    _same_everywhere(ranks)


@pytest.mark.parametrize("mode, message", [
    ("raise", "injected failure on rank 1"),
    ("kill", ""),
    ("exit", "rank 1 ended its script"),
    ("model", "model weights: rank 0 has"),
    ("data", "x: rank 0 has"),
    ("stop", "the ranks diverged"),
    ("stuck", "no progress for 2 s"),
])
def test_faults_end_the_job(mode, message):
    """A failing or diverging rank ends the whole job with an error within seconds, never a hang."""
    p, seconds = _run([os.path.join(SCRIPTS, "faults.py"), mode], 2, timeout=60)
    assert p.returncode != 0, p.stdout + p.stderr
    assert message in p.stderr + p.stdout, p.stderr
    assert "finished" not in p.stdout
    assert seconds < 30


def test_presharded_data(tmp_path):
    """auto_shard_dataset=False, 3 ranks each given its own (uneven) rows: replicas bit-identical, evaluate
    over the ranks' own rows equals one process's evaluate of all of them, predict returns the own rows."""
    p, _ = _run([os.path.join(SCRIPTS, "presharded.py"), str(tmp_path)], 3)
    assert p.returncode == 0, p.stdout + p.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(3)]
    _same_everywhere(ranks)
    for r, npz in enumerate(ranks):
        np.testing.assert_allclose(npz["evaluate"], npz["whole"], rtol=1e-5)
        assert int(npz["rows"]) == len(range(r, 355, 3))
        assert len(npz["loss"]) == 2 and npz["loss"][1] < npz["loss"][0]
