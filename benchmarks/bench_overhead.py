"""Autograd overhead: the Python cost of one op (forward + backward) on tiny (4, 4) tensors.

A chain of CHAIN ops of one kind is built on leaves that require grad, reduced with sum() and
back-propagated; the time per step divided by CHAIN is the per-op cost (graph recording,
backward engine, gradient accumulation and the tiny kernel itself). torch (same ops, float32,
1 thread) is measured in the same run when installed; plain numpy forward-only calls give the
floor that no wrapper can beat.

    python benchmarks/bench_overhead.py [--quick] [--threads N]
    pytest benchmarks/bench_overhead.py          # pytest-benchmark mode
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

try:
    import fastnn
    import fastnn.functional as F
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import fastnn
    import fastnn.functional as F
from fastnn.bench._harness import calibrate  # noqa: E402

CHAIN = 16
N = 4


def _leaves(make, rng):
    """x, w: (N, N); b: (N,)."""
    a = rng.standard_normal((N, N)).astype(np.float32) * 0.5
    return make(a.copy()), make(a.copy()), make(a[0].copy())


def _ops(lib):
    """op name -> step(x, w, b) over tensors of library `lib` ("fastnn" or "torch")."""
    if lib == "torch":
        import torch
        lin = lambda y, w, b: torch.nn.functional.linear(y, w, b).relu()  # noqa: E731
        sig = torch.sigmoid
    else:
        lin = lambda y, w, b: F.linear(y, w, b, "relu")  # noqa: E731
        sig = lambda y: y.sigmoid()  # noqa: E731
    return {
        "add": lambda y, w, b: y + w,
        "mul": lambda y, w, b: y * w,
        "matmul": lambda y, w, b: y @ w,
        "sigmoid": lambda y, w, b: sig(y),
        "sum(axis=0,keepdims)": lambda y, w, b: y.sum(0, keepdims=True) if lib == "fastnn"
        else y.sum(0, keepdim=True),
        "linear+relu": lin,
        "slice [1:]": lambda y, w, b: y[1:],
    }


def _step_fn(lib, op, backward):
    rng = np.random.default_rng(0)
    if lib == "torch":
        import torch
        x, w, b = _leaves(lambda a: torch.tensor(a, requires_grad=True), rng)
        ctx = torch.no_grad
    else:
        x, w, b = _leaves(lambda a: fastnn.tensor(a, requires_grad=True), rng)
        ctx = fastnn.no_grad
    f = _ops(lib)[op]

    def chain():
        y = x
        for _ in range(CHAIN):
            y = f(y, w, b)
        return y

    if backward:
        def step():
            chain().sum().backward()
            x.grad = w.grad = b.grad = None
    else:
        def step():
            with ctx():
                chain()
    return step


def _mlp_step_fn(lib, batch=32, sizes=(64, 32, 10)):
    """One training step of a small MLP: linear+relu, linear, softmax cross-entropy, backward."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    shapes = [(sizes[0], sizes[1]), (sizes[1],), (sizes[1], sizes[2]), (sizes[2],)]
    params = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in shapes]
    if lib == "torch":
        import torch
        tf = torch.nn.functional
        w1, b1, w2, b2 = [torch.tensor(p.T.copy() if p.ndim == 2 else p, requires_grad=True) for p in params]
        x, y = torch.tensor(x), torch.tensor(y)

        def step():
            loss = tf.cross_entropy(tf.linear(tf.linear(x, w1, b1).relu(), w2, b2), y)
            loss.backward()
            for p in (w1, b1, w2, b2):
                p.grad = None
    else:
        w1, b1, w2, b2 = [fastnn.tensor(p, requires_grad=True) for p in params]

        def step():
            loss = F.cross_entropy(F.linear(F.linear(x, w1, b1, "relu"), w2, b2), y)
            loss.backward()
            for p in (w1, b1, w2, b2):
                p.grad = None
    return step


def _numpy_step(op):
    a = np.random.default_rng(0).standard_normal((N, N)).astype(np.float32)
    f = {"add": np.add, "mul": np.multiply, "matmul": np.matmul}[op]

    def step():
        y = a
        for _ in range(CHAIN):
            y = f(y, a)
    return step


def timeit_interleaved(fns, reps=7, min_sample_s=0.03):
    """Median seconds per call of each fn in `fns` (a dict). Samples of the different fns are
    taken in turn, so load from other processes on this shared machine hits them alike."""
    inner = {k: calibrate(f, min_sample_s, warmup=3) for k, f in fns.items()}
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            n = inner[k]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


def run(quick=False, threads=1):
    fastnn.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
        libs = ("fastnn", "torch")
    except ImportError:
        libs = ("fastnn",)
    reps = 5 if quick else 15
    rows = []
    for backward in (True, False):
        for op in _ops("fastnn"):
            fns = {lib: _step_fn(lib, op, backward) for lib in libs}
            if not backward and op in ("add", "mul", "matmul"):
                fns["numpy"] = _numpy_step(op)
            us = {k: t / CHAIN * 1e6 for k, t in timeit_interleaved(fns, reps).items()}
            rows.append(("fwd+bwd" if backward else "fwd (no_grad)", op, us))
    us = {k: t * 1e6 for k, t in timeit_interleaved({lib: _mlp_step_fn(lib) for lib in libs}, reps).items()}
    rows.append(("train step", "MLP 64-32-10, batch 32", us))
    return rows


def _print(rows, threads):
    print(f"# autograd overhead, ({N},{N}) float32 tensors, chain of {CHAIN} ops, {threads} thread(s); "
          f"median us per op (train step: us per step)")
    print(f"{'mode':<14} {'op':<22} {'fastnn':>8} {'torch':>8} {'numpy':>8} {'fastnn/torch':>13}")
    for mode, op, us in rows:
        t = us.get("torch")
        ratio = f"{us['fastnn'] / t:.2f}" if t else "-"
        cell = lambda k: f"{us[k]:8.2f}" if k in us else f"{'-':>8}"  # noqa: E731
        print(f"{mode:<14} {op:<22} {cell('fastnn')} {cell('torch')} {cell('numpy')} {ratio:>13}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args._worker:
        # a fresh process with thread counts fixed before numpy/torch load their BLAS; numpy's
        # OpenBLAS must see neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE (they slow it down).
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(k, None)
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", f"--threads={args.threads}"]
        sys.exit(subprocess.call(cmd + (["--quick"] if args.quick else []), env=env))
    _print(run(args.quick, args.threads), args.threads)


# ---- pytest-benchmark mode ------------------------------------------------------------------
try:
    import pytest

    @pytest.mark.parametrize("op", list(_ops("fastnn")))
    @pytest.mark.parametrize("lib", ["fastnn", "torch"])
    def test_overhead_fwd_bwd(benchmark, lib, op):
        if lib == "torch":
            pytest.importorskip("torch")
        benchmark(_step_fn(lib, op, True))
except ImportError:  # pragma: no cover
    pass


if __name__ == "__main__":
    main()
