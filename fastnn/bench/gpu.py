"""GPU benchmark (``python -m fastnn.bench gpu``): fastnn's CUDA kernels against PyTorch eager on the same GPU.

Cases: fp32 GEMM 4096^3 (fastnn's tiled kernel, fastnn through cuBLAS, torch.matmul with TF32 off); an MLP
training step (784-256-256-10, ReLU, softmax cross-entropy, Adam) at batch 32 and 256, written directly on the
kernel tables (the layers do not place weights on a GPU yet) and the same step in PyTorch eager and replayed from
a captured CUDA graph. Times are medians of synchronised repeats, in milliseconds. Without a GPU it prints why
and measures nothing.
"""
import statistics
import time

import numpy as np

from fastnn import devices


def _time(fn, sync, reps, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def gemm_cases(cuda, torch, n, reps):
    rng = np.random.default_rng(0)
    a, b = (cuda.to_device(rng.standard_normal((n, n)).astype(np.float32)) for _ in range(2))
    out = cuda.empty((n, n))
    rows, flop = [], 2.0 * n ** 3
    backends = ["tiled"] + (["cublas"] if cuda.cublas_path() else [])
    for name in backends:
        cuda.set_gemm_backend(name)
        ms = _time(lambda: cuda.gemm(a, b, None, False, False, 1.0, 0.0, None, "none", out), cuda.synchronize, reps)
        rows.append({"case": f"gemm {n} fp32", "lib": f"fastnn-{name}", "ms": ms, "tflops": flop / ms / 1e9})
    cuda.set_gemm_backend("auto")
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        ta, tb = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
        tout = torch.empty(n, n, device="cuda")
        ms = _time(lambda: torch.matmul(ta, tb, out=tout), torch.cuda.synchronize, reps)
        rows.append({"case": f"gemm {n} fp32", "lib": "torch", "ms": ms, "tflops": flop / ms / 1e9})
    return rows


class _FastnnMLP:
    """784-256-256-10 training step on the CUDA table: forward, softmax cross-entropy, backward, fused Adam."""

    def __init__(self, cuda, batch, sizes=(784, 256, 256, 10)):
        rng = np.random.default_rng(1)
        self.c, self.t = cuda, 0
        self.W = [cuda.to_device(rng.standard_normal((i, o)).astype(np.float32) * np.sqrt(2 / i))
                  for i, o in zip(sizes, sizes[1:])]
        self.b = [cuda.zeros((o,)) for o in sizes[1:]]
        self.params = self.W + self.b
        self.m = [cuda.zeros(p.shape) for p in self.params]
        self.v = [cuda.zeros(p.shape) for p in self.params]
        self.x = cuda.to_device(rng.standard_normal((batch, sizes[0])).astype(np.float32))
        self.y = cuda.to_device(rng.integers(0, sizes[-1], batch).astype(np.int32))
        self.batch = batch
        self.ones = cuda.to_device(np.ones((1, batch), np.float32))

    def step(self):
        c, hs = self.c, [self.x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            last = i == len(self.W) - 1
            hs.append(c.gemm(hs[-1], W, None, False, False, 1.0, 0.0, b, "none" if last else "relu", None))
        _, lse = c.softmax_xent_forward(hs[-1], self.y)
        d = c.softmax_xent_backward(1.0 / self.batch, hs[-1], lse, self.y)
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            gW[i] = c.gemm(hs[i], d, None, True, False, 1.0, 0.0, None, "none", None)
            gb[i] = c.gemm(self.ones, d, None, False, False, 1.0, 0.0, None, "none", None).reshape(-1)  # column sums
            if i:
                d = c.relu_backward(c.gemm(d, self.W[i], None, False, True, 1.0, 0.0, None, "none", None), hs[i])
        self.t += 1
        c.adam_update(self.params, gW + gb, self.m, self.v, learning_rate=1e-3, step=self.t)


def mlp_cases(cuda, torch, batch, reps):
    rows = []
    net = _FastnnMLP(cuda, batch)
    rows.append({"case": f"mlp train b{batch}", "lib": "fastnn", "ms": _time(net.step, cuda.synchronize, reps)})
    if torch is None:
        return rows
    import torch.nn as nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    x = torch.randn(batch, 784, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=False)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    rows.append({"case": f"mlp train b{batch}", "lib": "torch-eager", "ms": _time(step, torch.cuda.synchronize, reps)})
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    rows.append({"case": f"mlp train b{batch}", "lib": "torch-graph", "ms": _time(graph.replay, torch.cuda.synchronize,
                                                                                   reps)})
    return rows


def main(args):
    if not devices.cuda_available():
        print("gpu: no usable CUDA GPU (or fastnn built without FASTNN_CUDA=ON); nothing measured")
        return []
    cuda, torch = devices.cuda_module(), _torch()
    quick = getattr(args, "quick", False)
    reps = 5 if quick else 20
    rows = gemm_cases(cuda, torch, 1024 if quick else 4096, reps)
    for batch in (32, 256):
        rows += mlp_cases(cuda, torch, batch, reps)
    print(f"{'case':<20} {'library':<16} {'ms':>10} {'TFLOP/s':>8}")
    for r in rows:
        tf = f"{r['tflops']:8.2f}" if "tflops" in r else ""
        print(f"{r['case']:<20} {r['lib']:<16} {r['ms']:10.3f} {tf}")
    print("not measured yet (kernels missing): seed CNN training b128 and CNN predict b1024 (conv2d/pool2d on GPU; "
          "layers/models placing weights on a device)")
    return rows
