"""Autograd overhead: the Python cost of one op (forward + backward) on tiny (4, 4) tensors.

A chain of CHAIN ops of one kind is built on leaves that require grad, reduced with sum() and
back-propagated; the time per step divided by CHAIN is the per-op cost (graph recording,
backward engine, gradient accumulation and the tiny kernel itself). torch (same ops, float32,
same thread count) is measured in the same process when installed, its samples interleaved with
fastnn's; plain numpy forward-only calls give the floor that no wrapper can beat. That process is
a worker with the thread variables set before numpy and torch load their BLAS (_harness.peer_env).

    fastnn-bench overhead [--quick] [--threads N]     (default: 1 thread)
"""
import numpy as np

import fastnn
import fastnn.functional as F
from fastnn.bench import _harness as H

CHAIN = 16
N = 4


def _leaves(make, rng):
    """x, w: (N, N); b: (N,)."""
    a = rng.standard_normal((N, N)).astype(np.float32) * 0.5
    return make(a.copy()), make(a.copy()), make(a[0].copy())


def ops(lib):
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


def step_fn(lib, op, backward):
    rng = np.random.default_rng(0)
    if lib == "torch":
        import torch
        x, w, b = _leaves(lambda a: torch.tensor(a, requires_grad=True), rng)
        ctx = torch.no_grad
    else:
        x, w, b = _leaves(lambda a: fastnn.tensor(a, requires_grad=True), rng)
        ctx = fastnn.no_grad
    f = ops(lib)[op]

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


def worker(args):
    """Every library in this one process (args.worker is "all"): their samples are interleaved."""
    threads = args.threads[0]
    fastnn.set_num_threads(threads)
    libs = ("fastnn",)
    if H.have("torch"):
        import torch
        torch.set_num_threads(threads)
        libs += ("torch",)
    reps = 5 if args.quick else 15
    for backward in (True, False):
        for op in ops("fastnn"):
            fns = {lib: step_fn(lib, op, backward) for lib in libs}
            if not backward and op in ("add", "mul", "matmul"):
                fns["numpy"] = _numpy_step(op)
            us = {k: t / CHAIN * 1e6 for k, t in H.timeit_interleaved(fns, reps).items()}
            H.emit(mode="fwd+bwd" if backward else "fwd (no_grad)", op=op, us=us)
    us = {k: t * 1e6 for k, t in H.timeit_interleaved({lib: _mlp_step_fn(lib) for lib in libs}, reps).items()}
    H.emit(mode="train step", op="MLP 64-32-10, batch 32", us=us)


def print_table(rows, threads):
    print(f"# autograd overhead, ({N},{N}) float32 tensors, chain of {CHAIN} ops, {threads} thread(s); "
          f"median us per op (train step: us per step)")
    print(f"{'mode':<14} {'op':<22} {'fastnn':>8} {'torch':>8} {'numpy':>8} {'fastnn/torch':>13}")
    for r in rows:
        us = r["us"]
        t = us.get("torch")
        ratio = f"{us['fastnn'] / t:.2f}" if t else "-"
        cell = lambda k: f"{us[k]:8.2f}" if k in us else f"{'-':>8}"  # noqa: E731
        print(f"{r['mode']:<14} {r['op']:<22} {cell('fastnn')} {cell('torch')} {cell('numpy')} {ratio:>13}")


def main(args):
    out = {}
    for t in args.threads or [1]:
        out[t] = H.run_worker("overhead", "all", t, H.worker_flags(args))
        print_table(out[t], t)
    return out
