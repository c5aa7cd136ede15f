"""SGEMM table: fastnn vs numpy (OpenBLAS at its best) and torch when installed, 1 and 2 threads.

Cases: square n^3, and the training shapes (M, K, N) in the three forms backprop runs:
  NN  C[M,N] = A[M,K] @ B[K,N]      (forward X @ W)
  TN  C[K,N] = A[M,K]^T @ G[M,N]    (weight gradient X^T @ dY: a transposed view, no copy)
  NT  C[M,K] = G[M,N] @ B[K,N]^T    (input gradient dY @ W^T)
GFLOP/s = 2*M*N*K / median time; ratios are fastnn / peer, measured in the same run. A ratio is shown
only when both measurements are clean: a measurement disturbed by other processes (samples retaken
and still disturbed, samples spread wide, or two threads sharing one core) is marked `*` and its ratio
column says "noisy" instead of a number.

--quick (a smoke run that ends within a minute on a busy machine): fewer cases, short samples, each
library's worker stops measuring after QUICK_WORKER_S seconds (the remaining cases print "-"), and no
worker starts after QUICK_TOTAL_S seconds.
"""
import os
import time

import numpy as np

from fastnn.bench import _harness as H

SQUARES = (64, 128, 256, 512, 1024, 2048, 4096)
QUICK_SQUARES = (128, 512, 1024)
# (M, K, N): Dense layers of the MNIST MLP/CNN and the CNN's im2col convolutions.
TRAINING = ((32, 784, 128), (128, 784, 128), (128, 128, 10), (128, 9216, 128), (5408, 9, 32), (4608, 288, 64))
QUICK_TRAINING = ((128, 784, 128), (4608, 288, 64))
LIBS = ("fastnn", "numpy", "torch")
QUICK_WORKER_S = 3.0  # --quick: measuring time per library worker (its start and imports come on top)
QUICK_TOTAL_S = 45.0  # --quick: no worker starts after this many seconds (on a machine too busy for the rest)


def cases(quick):
    for n in QUICK_SQUARES if quick else SQUARES:
        yield f"square {n}", "NN", (n, n, n)
    for mkn in QUICK_TRAINING if quick else TRAINING:
        for form in ("NN", "TN", "NT"):
            yield "(%d,%d,%d)" % mkn, form, mkn


def operands(form, m, k, n, rng):
    """The two operands (views, never copies) whose product the case times."""
    a, b, g = (rng.random(s, dtype=np.float32) for s in ((m, k), (k, n), (m, n)))
    return {"NN": (a, b), "TN": (a.T, g), "NT": (g, b.T)}[form]


def matmul_for(lib, nthreads):
    if lib == "fastnn":
        import fastnn
        fastnn.set_num_threads(nthreads)
        # Transposed views are passed as-is: the kernel reads them through their strides.
        return lambda x, y: fastnn.kernels.gemm(x, y), lambda x: x
    if lib == "numpy":
        return np.matmul, lambda x: x
    import torch
    torch.set_num_threads(nthreads)
    return torch.matmul, torch.from_numpy


def worker(args):
    quick = args.quick
    nthreads = args.threads[0]
    mm, conv = matmul_for(args.worker, nthreads)
    rng = np.random.default_rng(0)
    deadline = time.perf_counter() + QUICK_WORKER_S if quick else float("inf")
    for case, form, (m, k, n) in cases(quick):
        if time.perf_counter() > deadline:
            break  # quick: the rest of the cases are left unmeasured (the table prints "-")
        x, y = (conv(v) for v in operands(form, m, k, n, rng))
        t = H.timeit(lambda: mm(x, y), reps=5 if quick else 7, min_sample_s=0.02 if quick else 0.1,
                     cpu_clock=args.clock == "cpu", max_tries=10 if quick else None)
        emit_dims = {"NN": (m, n, k), "TN": (k, n, m), "NT": (m, k, n)}[form]
        H.emit(lib=args.worker, threads=nthreads, case=case, form=form, mnk=emit_dims,
               gflops=2.0 * m * n * k / t["median"] * 1e-9, us=t["median"] * 1e6, noisy=t["noisy"])


def measure(args):
    """{(lib, threads): {(case, form): row}} for every library present."""
    libs = [l for l in (args.libs.split(",") if args.libs else LIBS) if l != "torch" or H.have("torch")]
    res = {}
    deadline = time.perf_counter() + QUICK_TOTAL_S if args.quick else float("inf")
    for t in args.threads or (1, 2):
        for lib in libs:
            if time.perf_counter() > deadline:
                print(f"  not measured: {lib} threads={t} (--quick time limit; the machine is busy)", flush=True)
                continue
            rows = H.run_worker("gemm", lib, t, H.worker_flags(args))
            res[(lib, t)] = {(r["case"], r["form"]): r for r in rows}
            print(f"  measured {lib} threads={t}", flush=True)
    return res


def ratio(a, b):
    """fastnn / peer as printed: a number only when both rows were measured and clean."""
    if not a or not b:
        return "-"
    return "noisy" if a["noisy"] or b["noisy"] else f"{a['gflops'] / b['gflops']:.2f}x"


def table(res, nthreads, quick=False):
    libs = [l for l in LIBS if (l, nthreads) in res]
    peers = [l for l in libs if l != "fastnn"]
    headers = ["case", "form", "C (MxN) x K"] + [f"{l} GF/s" for l in libs] + [f"vs {p}" for p in peers]
    rows = []
    base = res.get(("fastnn", nthreads), {})
    for case, form, (m, k, n) in cases(quick):
        key = (case, form)
        if not any(key in res[(l, nthreads)] for l in libs):
            continue
        r = [case, form, "%dx%d x %d" % {"NN": (m, n, k), "TN": (k, n, m), "NT": (m, k, n)}[form]]
        for l in libs:
            x = res[(l, nthreads)].get(key)
            r.append(f"{x['gflops']:.1f}" + ("*" if x["noisy"] else "") if x else "-")
        r += [ratio(base.get(key), res[(p, nthreads)].get(key)) for p in peers]
        rows.append(r)
    return H.markdown_table(headers, rows)


def withheld(res, nthreads):
    """(ratios shown as "noisy", ratios measured) for one thread count."""
    base = res.get(("fastnn", nthreads), {})
    pairs = [(base[k], rows[k]) for (lib, t), rows in res.items() if t == nthreads and lib != "fastnn"
             for k in rows if k in base]
    return sum(a["noisy"] or b["noisy"] for a, b in pairs), len(pairs)


def main(args):
    clock = "thread CPU time" if args.clock == "cpu" else "wall time"
    print(f"SGEMM, GFLOP/s from median {clock} (* = samples disturbed by other processes were kept)")
    print("numpy runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (OpenBLAS picks its best kernel)")
    print(H.machine_line(), flush=True)
    res = measure(args)
    for t in args.threads or (1, 2):
        print(f"\n### threads = {t}\n")
        if not any(key[1] == t for key in res):
            print("not measured")
            continue
        print(table(res, t, args.quick))
        noisy, total = withheld(res, t)
        if noisy:
            print(f"\n{noisy} of {total} ratios withheld (\"noisy\"): other processes disturbed the measurement "
                  f"(load average {os.getloadavg()[0]:.1f}); rerun on a quiet machine for ratios", flush=True)
        if args.quick:
            print("(--quick: short samples and a time limit per library; a smoke run, not a result)")
