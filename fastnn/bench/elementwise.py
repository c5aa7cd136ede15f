"""Elementwise table: relu, sigmoid, tanh, gelu, exp on 16 Mi float32 and softmax over (131072, 128),
fastnn vs numpy vs torch (if installed), all writing into a preallocated output, 1 and 2 threads, next
to this machine's copy bandwidth (np.copyto of the same arrays, split into one slice per thread on that
many Python threads - numpy releases the GIL while it copies).
torch's dropout allocates its output and mask (it has no out=), so its row is not like for like.

GB/s counts bytes read + written (2 x 64 MiB per op: DRAM traffic, the arrays are 2x the L3).
Without --quick every library runs three times (every other round in reverse order) and each op keeps
its median round, so a few seconds of this VM's slow or fast phases (cores, memory) cannot decide a ratio.
Each (library, threads) pair runs in a fresh subprocess (_harness.peer_env: thread variables set,
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset), so OpenMP pools never spin against each other. Timing
(_harness.timeit): warm-up, an inner loop of >= 0.2 s per sample, 7 samples, median; samples during
which other processes used the CPU are retaken, '*' marks rows that never got enough clean samples. On
a busy machine, `--threads 1 --clock cpu` times by thread CPU time instead (robust to other processes;
the work of a single-threaded run is all in this thread).

    fastnn-bench elementwise [--quick] [--threads N ...] [--clock cpu]
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastnn.bench import _harness as H

N = 16 * 1024 * 1024
SM = (131072, 128)
OPS = ("relu", "sigmoid", "tanh", "gelu", "exp", "softmax", "dropout")


def cases(lib):
    """(op, fn) for one library, every fn writing into a preallocated output."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(N) * 3).astype(np.float32)
    y = np.empty_like(x)
    xs, ys = x.reshape(SM), y.reshape(SM)
    if lib == "fastnn":
        from fastnn import kernels
        return [("relu", lambda: kernels.relu(x, out=y)), ("sigmoid", lambda: kernels.sigmoid(x, out=y)),
                ("tanh", lambda: kernels.tanh(x, out=y)), ("gelu", lambda: kernels.gelu(x, out=y)),
                ("exp", lambda: kernels.exp(x, out=y)), ("softmax", lambda: kernels.softmax(xs, out=ys)),
                ("dropout", lambda: kernels.dropout(x, 0.5, 1, out=y))]
    if lib == "numpy":
        def sigmoid():
            np.negative(x, out=y)
            np.exp(y, out=y)
            np.add(y, 1, out=y)
            np.reciprocal(y, out=y)

        def softmax():
            np.subtract(xs, xs.max(axis=1, keepdims=True), out=ys)
            np.exp(ys, out=ys)
            np.divide(ys, ys.sum(axis=1, keepdims=True), out=ys)
        nthreads = int(os.environ["OMP_NUM_THREADS"])
        pool = ThreadPoolExecutor(nthreads)
        bounds = np.linspace(0, N, nthreads + 1).astype(int)
        parts = [(y[a:b], x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

        def copy():
            if nthreads == 1:
                np.copyto(y, x)
            else:
                list(pool.map(lambda p: np.copyto(*p), parts))
        return [("copy", copy), ("relu", lambda: np.maximum(x, 0, out=y)), ("sigmoid", sigmoid),
                ("tanh", lambda: np.tanh(x, out=y)), ("exp", lambda: np.exp(x, out=y)), ("softmax", softmax)]
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xts, yts = xt.view(SM), yt.view(SM)
    return [("relu", lambda: torch.clamp_min(xt, 0, out=yt)), ("sigmoid", lambda: torch.sigmoid(xt, out=yt)),
            ("tanh", lambda: torch.tanh(xt, out=yt)), ("gelu", lambda: torch._C._nn.gelu(xt, out=yt)),
            ("exp", lambda: torch.exp(xt, out=yt)),
            ("softmax", lambda: torch.ops.aten._softmax.out(xts, 1, False, out=yts)),
            ("dropout", lambda: torch.nn.functional.dropout(xt, 0.5, True))]


def worker(args):
    lib, threads = args.worker, args.threads[0]
    if lib == "fastnn":
        import fastnn
        fastnn.set_num_threads(threads)
    for op, fn in cases(lib):
        t = H.timeit(fn, reps=3 if args.quick else 7, min_sample_s=0.05 if args.quick else 0.2,
                     cpu_clock=args.clock == "cpu")
        H.emit(op=op, lib=lib, threads=threads, gbs=2 * N * 4 / t["median"] / 1e9, noisy=t["noisy"])


def measure(args, threads):
    """Each op's median round, per (op, library, threads)."""
    libs = ["fastnn", "numpy"] + (["torch"] if H.have("torch") else [])
    # Rounds: every library runs once per round, in reversed order every other round, and each op keeps
    # its median round (this VM's phases - two vCPUs sharing one core, memory bandwidth swinging
    # between ~52 and ~82 GB/s - last seconds and would otherwise decide for whichever library ran then).
    rounds = 1 if args.quick else 3
    by_key = {}
    for t in threads:
        for r in range(rounds):
            for lib in libs if r % 2 == 0 else libs[::-1]:
                for row in H.run_worker("elementwise", lib, t, H.worker_flags(args)):
                    by_key.setdefault((row["op"], row["lib"], row["threads"]), []).append(row)
    return [sorted(rs, key=lambda r: r["gbs"])[len(rs) // 2] for rs in by_key.values()], rounds


def table(rows, threads):
    out = []
    for t in threads:
        by = {(r["op"], r["lib"]): r for r in rows if r["threads"] == t}
        copy = by[("copy", "numpy")]["gbs"]
        out.append([f"copy (numpy, {t} thread{'s' if t > 1 else ''})", str(t), "", f"{copy:.1f}", "", "", ""])
        for op in OPS:
            def cell(lib):
                r = by.get((op, lib))
                return "-" if r is None else f"{r['gbs']:.1f}" + ("*" if r["noisy"] else "")
            f = by[(op, "fastnn")]["gbs"]
            peers = [by[(op, lib)]["gbs"] for lib in ("numpy", "torch") if (op, lib) in by]
            out.append([op, str(t), cell("fastnn"), cell("numpy"), cell("torch"),
                        f"{f / max(peers):.2f}" if peers else "-", f"{f / copy:.2f}"])
    return H.markdown_table(["op", "threads", "fastnn GB/s", "numpy GB/s", "torch GB/s", "fastnn / best peer",
                             "fastnn / copy"], out)


def main(args):
    threads = args.threads or [1, 2]
    rows, rounds = measure(args, threads)
    print(f"{H.machine_line()}\n{N} float32 elements (softmax over {SM[0]}x{SM[1]}); GB/s = (bytes read + written) "
          f"/ median time (median of {rounds} rounds), out= preallocated; '*' = samples disturbed by other processes")
    print(table(rows, threads))
    return rows
