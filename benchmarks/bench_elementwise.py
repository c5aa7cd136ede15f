"""Elementwise benchmark: relu, sigmoid, tanh, gelu, exp on 16 Mi float32 and softmax over
(131072, 128), fastnn vs numpy vs torch (if installed), all writing into a preallocated output,
1 and 2 threads, next to this machine's copy bandwidth (np.copyto of the same arrays, split into one
slice per thread on that many Python threads - numpy releases the GIL while it copies).
torch's dropout allocates its output and mask (it has no out=), so its row is not like for like.

GB/s counts bytes read + written (2 x 64 MiB per op: DRAM traffic, the arrays are 2x the L3).
Without --quick every library runs three times (every other round in reverse order) and each op keeps
its median round, so a few seconds of this VM's slow or fast phases (cores, memory) cannot decide a ratio.
Each (library, threads) pair runs in a fresh subprocess (fastnn.bench._harness.peer_env: thread
variables set, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset), so OpenMP pools never spin against each
other. Timing (fastnn.bench._harness.timeit): warm-up, an inner loop of >= 0.2 s per sample, 7
samples, median; samples during which other processes used the CPU are retaken, '*' marks rows that
never got enough clean samples. On a busy machine, `--threads 1 --clock cpu` times by thread CPU
time instead (robust to other processes; the work of a single-threaded run is all in this thread).

    python benchmarks/bench_elementwise.py [--quick] [--threads N] [--clock cpu]
    pytest benchmarks/bench_elementwise.py        # pytest-benchmark, the fastnn kernels only
"""
import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from fastnn.bench._harness import emit, machine_line, markdown_table, peer_env, timeit  # noqa: E402

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


def worker(lib, threads, quick, cpu_clock):
    if lib == "fastnn":
        import fastnn
        fastnn.set_num_threads(threads)
    for op, fn in cases(lib):
        t = timeit(fn, reps=3 if quick else 7, min_sample_s=0.05 if quick else 0.2, cpu_clock=cpu_clock)
        emit(op=op, lib=lib, threads=threads, gbs=2 * N * 4 / t["median"] / 1e9, noisy=t["noisy"])


def libs():
    out = ["fastnn", "numpy"]
    try:
        import torch  # noqa: F401
        out.append("torch")
    except ImportError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer and shorter samples")
    ap.add_argument("--threads", type=int, nargs="+", action="extend",
                    help="thread counts (`--threads 1 2` or repeated; default 1 and 2)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time by thread CPU time (busy machines; single-threaded runs only)")
    a = ap.parse_args()
    threads = a.threads or [1, 2]
    if a.clock == "cpu" and threads != [1]:
        sys.exit("--clock cpu measures single-threaded runs only: add --threads 1")
    if a.worker:
        worker(a.worker, threads[0], a.quick, a.clock == "cpu")
        return
    rows = []
    # Rounds: every library runs once per round, in reversed order every other round, and each op keeps
    # its median round (this VM's phases - two vCPUs sharing one core, memory bandwidth swinging
    # between ~52 and ~82 GB/s - last seconds and would otherwise decide for whichever library ran then).
    rounds = 1 if a.quick else 3
    order = [(t, lib) for t in threads for r in range(rounds) for lib in (libs() if r % 2 == 0 else libs()[::-1])]
    for t, lib in order:
        env = peer_env(t)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, __file__, "--worker", lib, "--threads", str(t), "--clock", a.clock]
        cmd += ["--quick"] if a.quick else []
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stdout[-2000:] + p.stderr[-4000:])
        rows += [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    by_key = {}
    for r in rows:
        by_key.setdefault((r["op"], r["lib"], r["threads"]), []).append(r)
    rows = [sorted(rs, key=lambda r: r["gbs"])[len(rs) // 2] for rs in by_key.values()]  # the median round
    print(f"{machine_line()}\n{N} float32 elements (softmax over {SM[0]}x{SM[1]}); GB/s = (bytes read + written) "
          f"/ median time (median of {rounds} rounds), out= preallocated; '*' = samples disturbed by other processes")
    table = []
    for t in threads:
        by = {(r["op"], r["lib"]): r for r in rows if r["threads"] == t}
        copy = by[("copy", "numpy")]["gbs"]
        table.append([f"copy (numpy, {t} thread{'s' if t > 1 else ''})", str(t), "", f"{copy:.1f}", "", "", ""])
        for op in OPS:
            def cell(lib):
                r = by.get((op, lib))
                return "-" if r is None else f"{r['gbs']:.1f}" + ("*" if r["noisy"] else "")
            f = by[(op, "fastnn")]["gbs"]
            peers = [by[(op, lib)]["gbs"] for lib in ("numpy", "torch") if (op, lib) in by]
            table.append([op, str(t), cell("fastnn"), cell("numpy"), cell("torch"),
                          f"{f / max(peers):.2f}" if peers else "-", f"{f / copy:.2f}"])
    print(markdown_table(["op", "threads", "fastnn GB/s", "numpy GB/s", "torch GB/s", "fastnn / best peer",
                          "fastnn / copy"], table))


# ---- pytest-benchmark entry points (fastnn kernels only) -------------------------------------------
def _kernel(op):
    return dict(cases("fastnn"))[op]


def _bench(benchmark, op):
    benchmark(_kernel(op))


def test_relu(benchmark):
    _bench(benchmark, "relu")


def test_sigmoid(benchmark):
    _bench(benchmark, "sigmoid")


def test_tanh(benchmark):
    _bench(benchmark, "tanh")


def test_gelu(benchmark):
    _bench(benchmark, "gelu")


def test_softmax(benchmark):
    _bench(benchmark, "softmax")


if __name__ == "__main__":
    main()
