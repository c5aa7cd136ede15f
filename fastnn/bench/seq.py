"""Sequence-layer table: Conv1D (a text CNN's layer; "valid", "same" and "causal" padding) and 1-D max
pooling, fastnn vs PyTorch's conv1d/max_pool1d, measured in the same run.

  conv   x (64, 400, 128) * k (5, 128, 128)  -> (64, L', 128)   padding valid / same / causal
  pool   max 2 on (64, 400, 128)             -> (64, 200, 128)
Ops: fwd, and fwd+bwd (dx, dkernel, dbias). fastnn runs the layers' own Functions (the (B, 1, L, C) views
of the 2-D kernels); causal padding is resolved by the kernels (no padded copy). torch gets its padding
from F.pad for same/causal (as Keras's asymmetric rule needs), NCL layout. --quick: a quarter of the rows.

    python -m fastnn.bench seq [--quick] [--threads N] [--clock cpu]
"""
import numpy as np

from fastnn.bench import _harness as H

CONV = (64, 400, 128, 128, 5)  # B, L, C, OC, K
PADDINGS = ("valid", "same", "causal")


def _sizes(quick):
    B, L, C, OC, K = CONV
    return (B // 4 if quick else B), L, C, OC, K


def _pads(L, K, padding):
    if padding == "causal":
        return K - 1, 0
    if padding == "same":
        return (K - 1) // 2, K - 1 - (K - 1) // 2
    return 0, 0


def fastnn_ops(quick):
    from fastnn.layers.conv1d import _Conv1DFunction
    from fastnn._ops.conv import MaxPool2D
    B, L, C, OC, K = _sizes(quick)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, L, C)).astype(np.float32)
    k = (rng.standard_normal((K, C, OC)) * 0.1).astype(np.float32)
    b = np.zeros(OC, np.float32)
    ops = []
    for padding in PADDINGS:
        OL = L if padding != "valid" else L - K + 1
        g = rng.standard_normal((B, OL, OC)).astype(np.float32)
        flop = 2.0 * B * OL * OC * K * C

        def fwd(padding=padding):
            return _Conv1DFunction((False, False, False)).forward(x, k, b, padding=padding)

        def fwdbwd(padding=padding, g=g):
            fn = _Conv1DFunction((True, True, True))
            fn.forward(x, k, b, padding=padding)
            return fn.backward(g)

        ops += [(f"conv {padding}", "fwd", flop, fwd), (f"conv {padding}", "fwd+bwd", 3 * flop, fwdbwd)]
    x4 = x.reshape(B, 1, L, C)
    g4 = rng.standard_normal((B, 1, L // 2, C)).astype(np.float32)

    def pool_fwdbwd():
        fn = MaxPool2D((True,))
        fn.forward(x4, pool_size=(1, 2))
        return fn.backward(g4)

    ops += [("pool", "fwd", None, lambda: MaxPool2D((False,)).forward(x4, pool_size=(1, 2))),
            ("pool", "fwd+bwd", None, pool_fwdbwd)]
    return ops


def torch_ops(quick):
    import torch
    import torch.nn.functional as F
    B, L, C, OC, K = _sizes(quick)
    torch.manual_seed(0)
    x = torch.randn(B, C, L)
    w, b = torch.randn(OC, C, K) * 0.1, torch.zeros(OC)
    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))
    ops = []
    for padding in PADDINGS:
        pads = _pads(L, K, padding)
        OL = L if padding != "valid" else L - K + 1
        g = torch.randn(B, OC, OL)
        flop = 2.0 * B * OL * OC * K * C

        def fwd(pads=pads):
            with torch.no_grad():
                return F.conv1d(F.pad(x, pads), w, b)

        def fwdbwd(pads=pads, g=g):
            xg.grad = wg.grad = bg.grad = None
            F.conv1d(F.pad(xg, pads), wg, bg).backward(g)

        ops += [(f"conv {padding}", "fwd", flop, fwd), (f"conv {padding}", "fwd+bwd", 3 * flop, fwdbwd)]
    gp = torch.randn(B, C, L // 2)

    def pool_fwd():
        with torch.no_grad():
            return F.max_pool1d(x, 2)

    def pool_fwdbwd():
        xg.grad = None
        F.max_pool1d(xg, 2).backward(gp)

    return ops + [("pool", "fwd", None, pool_fwd), ("pool", "fwd+bwd", None, pool_fwdbwd)]


def worker(args):
    lib, threads = args.worker, args.threads[0]
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
        ops = torch_ops(args.quick)
    else:
        import fastnn
        fastnn.set_num_threads(threads)
        ops = fastnn_ops(args.quick)
    for layer, op, flop, fn in ops:
        t = H.timeit(fn, min_sample_s=0.03 if args.quick else 0.1, cpu_clock=args.clock == "cpu")
        H.emit(lib=lib, threads=threads, layer=layer, op=op, flop=flop, ms=t["median"] * 1e3, ms_min=t["min"] * 1e3,
               noisy=t["noisy"])


def table(rows):
    key = lambda r: (r["layer"], r["op"], r["threads"])  # noqa: E731
    gf = lambda x: f"{x['flop'] / x['ms'] * 1e-6:.1f}" if x["flop"] else "-"  # noqa: E731
    ms = lambda x: f"{x['ms']:.3f} ({x['ms_min']:.3f})" + ("*" if x["noisy"] else "")  # noqa: E731
    out = []
    for r in [r for r in rows if r["lib"] == "fastnn"]:
        peer = next((p for p in rows if p["lib"] == "torch" and key(p) == key(r)), None)
        out.append([r["layer"], r["op"], str(r["threads"]), ms(r), gf(r)] +
                   ([ms(peer), gf(peer), f"{peer['ms'] / r['ms']:.2f}x"] if peer else ["-"] * 3))
    return H.markdown_table(["layer", "op", "threads", "fastnn ms (min)", "GFLOP/s", "torch ms (min)", "GFLOP/s",
                             "speed-up"], out)


def main(args):
    libs = ["fastnn"] + (["torch"] if H.have("torch") else [])
    rows = [r for t in args.threads or [1, 2] for lib in libs for r in H.run_worker("seq", lib, t, H.worker_flags(args))]
    B, L, C, OC, K = _sizes(args.quick)
    print(f"{H.machine_line()}; commit {H.commit()}")
    print(f"Conv1D x ({B}, {L}, {C}) * k ({K}, {C}, {OC}); median ms (min ms) by {args.clock} clock, "
          f"* = disturbed samples kept\n")
    print(table(rows))
    return rows
