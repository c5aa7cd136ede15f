"""Speed on a shared machine (issue #19): ``python -m fastnn.bench contention [--quick]``.

Three scenarios, each beside its idle-machine baseline measured in the same run:
  alternate   one process alternates numpy's matrix product (OpenBLAS) and fastnn's, 1024^3, each on all the
              machine's threads, as preprocessing between training steps does: each keeps what fraction of
              its speed alone (target >= 80%)?
  busy core   another process keeps one core busy; the seed CNN trains (train group's "cnn", batch 128) on 2
              threads: fastnn against its own 1-thread speed on the idle machine (target >= 0.9x) and against
              PyTorch (and Keras) under the same load (target >= 1.0x)
  two jobs    two training processes of the same library at once on the machine (default thread counts):
              samples/s of each and in total, against one alone
Thread pools are sized by the environment as in the train group; the idle baselines wait for two free cores,
the loaded runs do not (the load is the point).
"""
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time

from fastnn.bench import _harness as H
from fastnn.bench import train

N_GEMM = 1024


def _spinner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


@contextlib.contextmanager
def _no_core_wait():
    """The harness does not wait for two free cores meanwhile (the load is the point)."""
    gave_up = H._core_wait["gave_up"]
    H._core_wait["gave_up"] = True
    try:
        yield
    finally:
        H._core_wait["gave_up"] = gave_up


@contextlib.contextmanager
def _loaded(spinners):
    """`spinners` processes that each keep a core busy."""
    procs = [_spinner() for _ in range(spinners)]
    time.sleep(0.3)
    try:
        with _no_core_wait():
            yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _cnn(lib, nthreads, quick):
    """Seed-CNN training samples/s (median epoch) of one worker run."""
    extra = train.sizes(quick)["cnn"]
    rows, _ = train.run_one(lib, "cnn", nthreads, extra)
    tr = next(r for r in rows if r["kind"] == "train")
    return int(extra[extra.index("--n") + 1]) / statistics.median(tr["epoch_s"])


def _two_at_once(lib, nthreads, quick):
    out = [None, None]

    def one(i):
        out[i] = _cnn(lib, nthreads, quick)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    with _no_core_wait():  # the other job is the load
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return out


def _alternate(nthreads, quick):
    rows = H.run_worker("contention", "fastnn", nthreads, ["--quick"] if quick else [])
    return {r["case"]: r for r in rows}


def main(args):
    threads = (args.threads or [os.cpu_count() or 2])[0]
    libs = [lib for lib in train.available_libs(args)]
    print("Speed on a shared machine: numpy alternating with fastnn, a busy core, two jobs at once")
    print(H.machine_line(), flush=True)
    report = {"threads": threads}

    alt = _alternate(threads, args.quick)
    rows = []
    for lib in ("numpy", "fastnn"):
        alone, mixed = alt[f"{lib} alone"]["gflops"], alt[f"{lib} alternating"]["gflops"]
        rows.append([f"{lib} GEMM {N_GEMM}^3", f"{alone:.0f}", f"{mixed:.0f}", f"{mixed / alone:.0%}", ">= 80%",
                     "yes" if mixed >= 0.8 * alone else "NO"])
    print(f"\n### numpy and fastnn GEMMs alternating in one process ({threads} threads each; GFLOP/s)\n")
    print(H.markdown_table(["case", "alone", "alternating", "kept", "target", "met"], rows))
    report["alternate"] = alt

    idle1 = _cnn("fastnn", 1, args.quick)
    busy = {}
    with _loaded(1):
        for lib in libs:
            busy[lib] = _cnn(lib, 2, args.quick)
    rows = [["fastnn, 1 thread, idle machine", f"{idle1:,.0f}", "", ""]]
    f = busy.get("fastnn")
    for lib in libs:
        v = busy[lib]
        if lib == "fastnn":
            rows.append([f"{lib}, 2 threads, one core busy", f"{v:,.0f}", f"{v / idle1:.2f}x of fastnn 1-thread idle",
                         ">= 0.9x " + ("yes" if v >= 0.9 * idle1 else "NO")])
        else:
            rows.append([f"{lib}, 2 threads, one core busy", f"{v:,.0f}", f"fastnn {f / v:.2f}x",
                         ">= 1.0x " + ("yes" if f >= v else "NO")])
    print("\n### seed CNN training (batch 128, samples/s) while another process keeps one core busy\n")
    print(H.markdown_table(["case", "samples/s", "ratio", "target"], rows))
    report["busy_core"] = {"fastnn_1thread_idle": idle1, **busy}

    rows = []
    report["two_jobs"] = {}
    for lib in libs:
        alone = _cnn(lib, threads, args.quick)
        a, b = _two_at_once(lib, threads, args.quick)
        rows.append([lib, f"{alone:,.0f}", f"{a:,.0f} + {b:,.0f} = {a + b:,.0f}", f"{(a + b) / alone:.2f}x"])
        report["two_jobs"][lib] = {"alone": alone, "each": [a, b]}
    print(f"\n### two seed-CNN training jobs at once ({threads} threads each; samples/s)\n")
    print(H.markdown_table(["library", "one job alone", "two jobs at once", "total vs alone"], rows))
    return report


def worker(args):
    """numpy and fastnn GEMMs alone and alternating, timed call by call (medians)."""
    import numpy as np

    import fastnn
    n, reps = N_GEMM, (8 if args.quick else 30)
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    out = np.empty((n, n), np.float32)
    calls = {"numpy": lambda: np.matmul(a, b, out=out), "fastnn": lambda: fastnn.kernels.gemm(a, b, out=out)}

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    flop = 2.0 * n ** 3
    # fastnn first: once numpy has run, OpenBLAS's idle threads keep spinning for a while (~0.1 s), which would
    # disturb the next library's "alone" baseline; a pause lets them (and fastnn's) go to sleep between phases
    for lib in ("fastnn", "numpy"):
        fn = calls[lib]
        fn()
        H.emit(case=f"{lib} alone", gflops=flop / statistics.median(timed(fn) for _ in range(reps)) / 1e9)
        time.sleep(0.5)
    times = {lib: [] for lib in calls}
    for _ in range(reps):
        for lib, fn in calls.items():
            times[lib].append(timed(fn))
    for lib in calls:
        H.emit(case=f"{lib} alternating", gflops=flop / statistics.median(times[lib]) / 1e9)
