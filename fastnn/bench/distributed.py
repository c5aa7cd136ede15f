"""Data parallelism over MPI (fastnn.distribution): measured here, projected to many hosts.

Measured (``mpiexec -n 2`` on this machine):
  - all-reduce time vs message size: fastnn's deterministic bucketed reduction (reduce-scatter + all-gather,
    summed in rank order) and, for reference, MPI's own Allreduce(SUM) (not used: no fixed summation order);
  - the benchmark row: the CNN of the train group at global batch 256, samples/s of 2 ranks x 1 thread vs
    1 rank x 2 threads (target >= 0.9x: the gradient exchange hidden behind backward);
  - the step's compute time at the per-rank batch (forward, and the whole step) and the gradient size.
Projected: scaling efficiency for 2-64 hosts of a given bandwidth and latency (``--bandwidth`` GB/s,
``--latency`` us, or FASTNN_BENCH_BANDWIDTH_GBPS / FASTNN_BENCH_LATENCY_US), with the ring all-reduce cost
model of docs/distributed.md:
  T_comm(P) = buckets * 2 (P-1) * latency + 2 (P-1)/P * gradient_bytes / bandwidth
  T_step(P) = T_compute + max(T_comm(P, last bucket), T_comm(P) - T_backward), T_backward = step - forward
  efficiency(P) = T_compute / T_step(P)   (weak scaling: every host keeps the per-rank batch)
"""
import os
import statistics
import sys
import time
from types import SimpleNamespace

import numpy as np

from fastnn.bench import _harness as H

HOSTS = (2, 4, 8, 16, 32, 64)
GLOBAL_BATCH = 256


def _mpiexec():
    for d in (os.path.join(sys.prefix, "bin"), os.path.dirname(sys.executable)):
        path = os.path.join(d, "mpiexec")
        if os.path.exists(path):
            return path
    return None


def _sizes(quick):
    return [4 << 10, 64 << 10, 1 << 20, 4 << 20] if quick else [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20,
                                                                  4 << 20, 16 << 20, 64 << 20]


def _train_samples(quick):
    return (GLOBAL_BATCH * 8, 2) if quick else (GLOBAL_BATCH * 40, 3)  # samples per epoch, timed epochs


# ---- the workers ---------------------------------------------------------------------------------------
def _allreduce_rows(quick):
    """Time fastnn's GradSync and MPI's Allreduce on flat float32 buffers of each size (run by every rank)."""
    from fastnn.distribution import comm
    from fastnn.distribution.reducer import GradSync
    world = comm.world()
    MPI = world.MPI
    rows = []
    for nbytes in _sizes(quick):
        g = np.ones(nbytes // 4, np.float32)
        v = SimpleNamespace(data=g, grad=g, shape=g.shape)
        sync = GradSync(world, SimpleNamespace(variables=[v], layers=[SimpleNamespace(trainable_weights=[v])]),
                        1 << 20)
        ours, mpi = [], []
        out = np.empty_like(g)
        reps = 5 if nbytes >= (16 << 20) else 20
        for _ in range(reps):
            world.barrier()
            t0 = time.perf_counter()
            v.grad = g
            sync.finish()
            ours.append(time.perf_counter() - t0)
            world.barrier()
            t0 = time.perf_counter()
            world.comm.Allreduce(g, out, MPI.SUM)
            mpi.append(time.perf_counter() - t0)
        rows.append({"kind": "allreduce", "bytes": nbytes, "ours_s": statistics.median(ours),
                     "mpi_s": statistics.median(mpi), "buckets": len(sync.buckets)})
    return rows


def _cnn_model():
    import fastnn
    from fastnn.bench._train_worker import keras_model
    return keras_model(fastnn, "cnn")


def _train_rows(quick, distributed):
    """samples/s of fit on the CNN at global batch 256 (distributed: under mpiexec, DataParallel)."""
    import fastnn
    from fastnn.bench._train_worker import data
    if distributed:
        fastnn.distribution.set_distribution(fastnn.distribution.DataParallel())
    fastnn.utils.set_random_seed(0)
    n, epochs = _train_samples(quick)
    x, y = data(n, True)
    model = _cnn_model()
    times = []

    class Clock(fastnn.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=epochs + 1, verbose=0, callbacks=[Clock()])
    return [{"kind": "train", "sps": n / statistics.median(times[1:]), "ranks": fastnn.distribution.world_size(),
             "threads": fastnn.get_num_threads()}]


def _compute_rows(quick):
    """One process on 1 thread (a rank's share of this machine), per-rank batch (256 / 2): the step's time, its
    forward's time, the gradient size and its buckets (as DataParallel cuts them, default 1 MiB)."""
    import fastnn
    from fastnn.bench._train_worker import data
    from fastnn.distribution.reducer import GradSync
    fastnn.set_num_threads(1)
    fastnn.utils.set_random_seed(0)
    rows_per_rank = GLOBAL_BATCH // 2
    x, y = data(rows_per_rank, True)
    model = _cnn_model()
    model.train_on_batch(x, y)
    plan = model._plan()
    reps = 3 if quick else 7
    step = H.timeit(lambda: plan.train_step([x], [y]), reps=reps, min_sample_s=0.05)["median"]
    fwd = H.timeit(lambda: plan.forward([x], True, False, plan.fused_steps), reps=reps, min_sample_s=0.05)["median"]
    buckets = GradSync(SimpleNamespace(size=2), plan, 1 << 20).buckets
    return [{"kind": "compute", "step_s": step, "forward_s": fwd, "grad_bytes": 4 * buckets[-1].hi,
             "last_bucket_bytes": 4 * (buckets[-1].hi - buckets[-1].lo), "buckets": len(buckets),
             "batch": rows_per_rank, "threads": fastnn.get_num_threads()}]


def worker(args):
    part = args.libs or "mpi"
    if part == "mpi":  # under mpiexec -n 2: all-reduce sweep and distributed training
        import fastnn
        fastnn.set_num_threads(1)
        rows = _allreduce_rows(args.quick) + _train_rows(args.quick, True)
        if fastnn.distribution.rank() == 0:
            for row in rows:
                H.emit(**row)
    elif part == "single":
        for row in _train_rows(args.quick, False) + _compute_rows(args.quick):
            H.emit(**row)


# ---- the table ---------------------------------------------------------------------------------------------
def ring_allreduce_s(nbytes, hosts, bandwidth_gbps, latency_us, messages=1):
    """The ring all-reduce of ``nbytes`` over ``hosts``: 2 (P-1) latencies per message and 2 (P-1)/P of the
    bytes over each link."""
    p = hosts
    return messages * 2 * (p - 1) * latency_us * 1e-6 + 2 * (p - 1) / p * nbytes / (bandwidth_gbps * 1e9)


def project(compute_s, overlap_s, grad_bytes, buckets, last_bucket_bytes, bandwidth_gbps, latency_us, hosts=HOSTS):
    """[(P, T_comm, exposed, efficiency)]: the all-reduce overlaps backward except the last bucket's (the first
    layers', ready only when backward ends): exposed = max(T_comm(last bucket), T_comm - backward)."""
    out = []
    for p in hosts:
        comm = ring_allreduce_s(grad_bytes, p, bandwidth_gbps, latency_us, buckets)
        last = ring_allreduce_s(last_bucket_bytes, p, bandwidth_gbps, latency_us)
        exposed = max(last, comm - overlap_s)
        out.append((p, comm, exposed, compute_s / (compute_s + exposed)))
    return out


def main(args):
    bandwidth = getattr(args, "bandwidth", None) or float(os.environ.get("FASTNN_BENCH_BANDWIDTH_GBPS", "1.25"))
    latency = getattr(args, "latency", None) or float(os.environ.get("FASTNN_BENCH_LATENCY_US", "50"))
    mpiexec = _mpiexec()
    if mpiexec is None or not H.have("mpi4py"):
        print("  (mpi4py / mpiexec not installed: pip install fastnn[mpi])")
        return None
    flags = ["--quick"] if args.quick else []
    mpi_rows = H.run_worker("distributed", "fastnn", 1, flags + ["--libs", "mpi"], launcher=(mpiexec, "-n", "2"))
    single = H.run_worker("distributed", "fastnn", 2, flags + ["--libs", "single"])
    sweep = [r for r in mpi_rows if r["kind"] == "allreduce"]
    print("All-reduce of a float32 buffer, 2 ranks on this machine (median):\n")
    print(H.markdown_table(["bytes", "fastnn (fixed order) ms", "GB/s", "MPI Allreduce ms", "buckets"],
                           [[f"{r['bytes']:,}", f"{r['ours_s'] * 1e3:.3f}", f"{r['bytes'] / r['ours_s'] / 1e9:.2f}",
                             f"{r['mpi_s'] * 1e3:.3f}", str(r["buckets"])] for r in sweep]))
    two = next(r for r in mpi_rows if r["kind"] == "train")
    one = next(r for r in single if r["kind"] == "train")
    ratio = two["sps"] / one["sps"]
    print(f"\nCNN training, global batch {GLOBAL_BATCH} (rough on a busy machine):\n")
    print(H.markdown_table(["configuration", "samples/s", "vs 1 rank x 2 threads", "target"],
                           [["1 rank x 2 threads", f"{one['sps']:.0f}", "1.00", ""],
                            ["2 ranks x 1 thread (DataParallel)", f"{two['sps']:.0f}", f"{ratio:.2f}",
                             ">= 0.90 " + ("met" if ratio >= 0.9 else "NOT met")]]))
    comp = next(r for r in single if r["kind"] == "compute")
    buckets = comp["buckets"]
    overlap = comp["step_s"] - comp["forward_s"]
    print(f"\nProjected scaling (weak: {comp['batch']} rows per host per step, step {comp['step_s'] * 1e3:.1f} ms of "
          f"which backward+update {overlap * 1e3:.1f} ms at {comp['threads']} threads, gradient "
          f"{comp['grad_bytes'] / 1e6:.2f} MB in {buckets} bucket(s), the last {comp['last_bucket_bytes'] / 1e3:.0f} "
          f"kB; links of {bandwidth:g} GB/s and {latency:g} us; ring all-reduce model, docs/distributed.md):\n")
    proj = project(comp["step_s"], overlap, comp["grad_bytes"], buckets, comp["last_bucket_bytes"], bandwidth, latency)
    print(H.markdown_table(["hosts", "all-reduce ms", "exposed ms", "efficiency"],
                           [[str(p), f"{c * 1e3:.2f}", f"{x * 1e3:.2f}", f"{e:.2f}"] for p, c, x, e in proj]))
    return {"allreduce": sweep, "train": [one, two], "ratio": ratio, "compute": comp,
            "projection": [{"hosts": p, "comm_s": c, "exposed_s": x, "efficiency": e} for p, c, x, e in proj],
            "bandwidth_gbps": bandwidth, "latency_us": latency}
