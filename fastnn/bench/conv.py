"""Convolution / max-pooling table: fastnn vs PyTorch, measured in the same run.

Layers (NHWC for fastnn; torch at its best of NCHW and channels_last):
  conv1  x (128,28,28,1)  * k (3,3,1,32)   valid -> (128,26,26,32)   the MNIST CNN's first layer
  conv2  x (128,26,26,32) * k (3,3,32,64)  valid -> (128,24,24,64)
  big    x (32,56,56,64)  * k (3,3,64,128) same  -> (32,56,56,128)
  pool   max 2x2 on (128,24,24,64)               -> (128,12,12,64)
Ops: fwd (conv with bias), fwd+bwd (forward, then dx, dkernel, dbias), fwd+bwd(no dX) for conv1 (a
first layer needs no input gradient). GFLOP/s counts F = 2*B*OH*OW*OC*KH*KW*C per pass: F for fwd,
3F for fwd+bwd, 2F for fwd+bwd(no dX). "gemm" rows give this machine's GEMM rate on the big layer's
per-image GEMM shape (M=3136, K=576, N=128) for fastnn and torch.mm.

Each thread count and each library runs in its own subprocess (separate OpenMP runtimes never spin
against each other). Timing is the harness's: medians of 7 samples, each >= 0.1 s (0.03 s with
--quick), samples disturbed by other processes retaken; --clock cpu times by thread CPU time (for a
busy machine; single-threaded runs only).

    fastnn-bench conv [--quick] [--threads N] [--clock cpu] [--layers conv1,pool]
"""
import numpy as np

from fastnn.bench import _harness as H

CONVS = {  # name: (B, H, W, C, OC, K, padding)
    "conv1": (128, 28, 28, 1, 32, 3, "valid"),
    "conv2": (128, 26, 26, 32, 64, 3, "valid"),
    "big": (32, 56, 56, 64, 128, 3, "same"),
}
POOL = (128, 24, 24, 64)
GEMM = (3136, 576, 128)  # M, K, N
LAYERS = (*CONVS, "pool", "gemm")


def conv_flop(name):
    B, H, W, C, OC, K, pad = CONVS[name]
    OH, OW = (H, W) if pad == "same" else (H - K + 1, W - K + 1)
    return 2.0 * B * OH * OW * OC * K * K * C, (B, OH, OW, OC)


def fastnn_ops():
    """(layer, op, flop or None, callable) for fastnn's kernels."""
    import fastnn
    rng = np.random.default_rng(0)
    ops = []
    for name, (B, H, W, C, OC, K, pad) in CONVS.items():
        flop, oshape = conv_flop(name)
        x = rng.random((B, H, W, C), dtype=np.float32)
        k = (rng.standard_normal((K, K, C, OC)) * 0.1).astype(np.float32)
        b = np.zeros(OC, np.float32)
        g = rng.standard_normal(oshape).astype(np.float32)
        kern = fastnn.backend.of(x)  # looked up once: the timed calls are the kernels alone

        def fwd(x=x, k=k, b=b, pad=pad, kern=kern):
            return kern.conv2d_forward(x, k, b, padding=pad)

        def fwdbwd(x=x, k=k, b=b, g=g, pad=pad, kern=kern, dx=True):
            kern.conv2d_forward(x, k, b, padding=pad)
            return kern.conv2d_backward(g, x, k, padding=pad, dx=dx)

        ops.append((name, "fwd", flop, fwd))
        ops.append((name, "fwd+bwd", 3 * flop, fwdbwd))
        if name == "conv1":
            ops.append((name, "fwd+bwd(no dX)", 2 * flop, lambda f=fwdbwd: f(dx=False)))
    x = rng.standard_normal(POOL).astype(np.float32)
    g = rng.standard_normal((POOL[0], POOL[1] // 2, POOL[2] // 2, POOL[3])).astype(np.float32)
    kern = fastnn.backend.of(x)
    ops.append(("pool", "fwd", None, lambda: kern.maxpool2d_forward(x)))

    def pool_fwdbwd():  # as autograd runs it: the forward keeps the window cell numbers
        _, arg = kern.maxpool2d_forward(x, return_argmax=True)
        return kern.maxpool2d_backward(g, x, argmax=arg)

    ops.append(("pool", "fwd+bwd", None, pool_fwdbwd))
    M, K, N = GEMM
    a, bm = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
    gemm = fastnn.backend.of(a).gemm
    ops.append(("gemm", "sgemm", 2.0 * M * N * K, lambda: gemm(a, bm)))
    return ops


def _torch_ops():
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    ops = []
    for name, (B, H, W, C, OC, K, pad) in CONVS.items():
        flop, _ = conv_flop(name)
        p = (K - 1) // 2 if pad == "same" else 0  # odd K, stride 1: symmetric
        for fmt, mf in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
            x = torch.rand(B, C, H, W).contiguous(memory_format=mf)
            w = (torch.randn(OC, C, K, K) * 0.1).contiguous(memory_format=mf)
            b = torch.zeros(OC)
            with torch.no_grad():
                g = torch.randn_like(F.conv2d(x, w, b, padding=p)).contiguous(memory_format=mf)
            xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))

            def fwd(x=x, w=w, b=b, p=p):
                with torch.no_grad():
                    return F.conv2d(x, w, b, padding=p)

            def fwdbwd(xin=xg, wg=wg, bg=bg, g=g, p=p):
                xg.grad = wg.grad = bg.grad = None
                F.conv2d(xin, wg, bg, padding=p).backward(g)

            ops.append((name, "fwd", flop, fwd, fmt))
            ops.append((name, "fwd+bwd", 3 * flop, fwdbwd, fmt))
            if name == "conv1":
                ops.append((name, "fwd+bwd(no dX)", 2 * flop, lambda f=fwdbwd, x=x: f(xin=x), fmt))
    for fmt, mf in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        B, H, W, C = POOL
        x = torch.randn(B, C, H, W).contiguous(memory_format=mf)
        g = torch.randn(B, C, H // 2, W // 2).contiguous(memory_format=mf)
        xg = x.clone().requires_grad_(True)

        def pf(x=x):
            with torch.no_grad():
                return F.max_pool2d(x, 2)

        def pfb(xg=xg, g=g):
            xg.grad = None
            F.max_pool2d(xg, 2).backward(g)

        ops.append(("pool", "fwd", None, pf, fmt))
        ops.append(("pool", "fwd+bwd", None, pfb, fmt))
    M, K, N = GEMM
    a, bm = torch.rand(M, K), torch.rand(K, N)
    ops.append(("gemm", "sgemm", 2.0 * M * N * K, lambda: torch.mm(a, bm), "-"))
    return ops


def worker(args):
    lib, threads = args.worker, args.threads[0]
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
        ops = _torch_ops()
    else:
        import fastnn
        fastnn.set_num_threads(threads)
        ops = [op + ("NHWC",) for op in fastnn_ops()]
    for layer, op, flop, fn, fmt in ops:
        if layer in args.layers.split(","):
            t = H.timeit(fn, min_sample_s=0.03 if args.quick else 0.1, cpu_clock=args.clock == "cpu")
            H.emit(lib=lib, threads=threads, layer=layer, op=op, fmt=fmt, flop=flop, ms=t["median"] * 1e3,
                   ms_min=t["min"] * 1e3, noisy=t["noisy"])


def table(rows):
    key = lambda r: (r["layer"], r["op"], r["threads"])  # noqa: E731
    gf = lambda x: f"{x['flop'] / x['ms'] * 1e-6:.1f}" if x["flop"] else "-"  # noqa: E731
    ms = lambda x: f"{x['ms']:.3f} ({x['ms_min']:.3f})" + ("*" if x["noisy"] else "")  # noqa: E731
    out = []
    for r in [r for r in rows if r["lib"] == "fastnn"]:
        peers = [p for p in rows if p["lib"] == "torch" and key(p) == key(r)]
        tb = min(peers, key=lambda p: p["ms"]) if peers else None
        out.append([r["layer"], r["op"], str(r["threads"]), ms(r), gf(r)] +
                   ([ms(tb), tb["fmt"], gf(tb), f"{tb['ms'] / r['ms']:.2f}x"] if tb else ["-"] * 4))
    return H.markdown_table(["layer", "op", "threads", "fastnn ms (min)", "GFLOP/s", "torch ms (min)",
                             "torch layout", "GFLOP/s", "speed-up"], out)


def main(args):
    libs = ["fastnn"] + (["torch"] if H.have("torch") else [])
    flags = ["--layers", args.layers or ",".join(LAYERS), *H.worker_flags(args)]
    rows = [r for t in args.threads or [1, 2] for lib in libs for r in H.run_worker("conv", lib, t, flags)]
    print(f"{H.machine_line()}; commit {H.commit()}")
    print(f"median ms (min ms) by {args.clock} clock, * = disturbed samples kept; torch = its faster layout\n")
    print(table(rows))
    return rows
