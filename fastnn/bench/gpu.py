"""GPU benchmark (``python -m fastnn.bench gpu``): fastnn's CUDA kernels against PyTorch eager on the same GPU.

Cases: fp32 GEMM 4096^3 (fastnn's tiled kernel, fastnn through cuBLAS, torch.matmul with TF32 off); an MLP
training step (784-256-256-10, ReLU, softmax cross-entropy, Adam) at batch 32 and 256; the seed CNN's training
step at batch 128 and its prediction at batch 1024. fastnn's steps are written directly on the kernel tables (the
layers do not place weights on a GPU yet); PyTorch runs the same models eager and replayed from a captured CUDA
graph. Times are medians of synchronised repeats, in milliseconds. Without a GPU it prints why
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


class _FastnnCNN:
    """The seed CNN (conv32-conv64 3x3 relu, maxpool 2, dropout .25, dense128 relu, dropout .5, dense10, softmax
    cross-entropy, Adam) on the CUDA table, NHWC."""

    def __init__(self, cuda, batch):
        rng = np.random.default_rng(2)
        put = cuda.to_device
        self.c, self.batch, self.t = cuda, batch, 0
        self.k1, self.k2 = put(rng.standard_normal((3, 3, 1, 32)).astype(np.float32) * 0.3), \
            put(rng.standard_normal((3, 3, 32, 64)).astype(np.float32) * 0.06)
        self.W1 = put(rng.standard_normal((12 * 12 * 64, 128)).astype(np.float32) * 0.01)
        self.W2 = put(rng.standard_normal((128, 10)).astype(np.float32) * 0.1)
        self.b = [cuda.zeros((n,)) for n in (32, 64, 128, 10)]
        self.params = [self.k1, self.k2, self.W1, self.W2] + self.b
        self.m = [cuda.zeros(p.shape) for p in self.params]
        self.v = [cuda.zeros(p.shape) for p in self.params]
        self.x = put(rng.standard_normal((batch, 28, 28, 1)).astype(np.float32))
        self.y = put(rng.integers(0, 10, batch).astype(np.int32))
        self.ones = put(np.ones((1, batch), np.float32))

    def forward(self, training):
        c, B = self.c, self.batch
        h1 = c.conv2d_forward(self.x, self.k1, self.b[0], activation="relu")
        h2 = c.conv2d_forward(h1, self.k2, self.b[1], activation="relu")
        p = c.maxpool2d_forward(h2, pool_size=2)
        if training:
            p = c.dropout(p, 0.25, 1, self.t)
        f = p.reshape(B, -1)
        d1 = c.gemm(f, self.W1, None, False, False, 1.0, 0.0, self.b[2], "relu", None)
        d1d = c.dropout(d1, 0.5, 2, self.t) if training else d1
        z = c.gemm(d1d, self.W2, None, False, False, 1.0, 0.0, self.b[3], "none", None)
        return (h1, h2, p, f, d1, d1d), z

    def predict(self):
        return self.c.softmax_forward(self.forward(False)[1])

    def step(self):
        c, B = self.c, self.batch
        (h1, h2, p, f, d1, d1d), z = self.forward(True)
        _, lse = c.softmax_xent_forward(z, self.y)
        dz = c.softmax_xent_backward(1.0 / B, z, lse, self.y)
        gW2 = c.gemm(d1d, dz, None, True, False, 1.0, 0.0, None, "none", None)
        gb3 = c.gemm(self.ones, dz, None, False, False, 1.0, 0.0, None, "none", None).reshape(-1)
        dd1 = c.relu_backward(c.dropout(c.gemm(dz, self.W2, None, False, True, 1.0, 0.0, None, "none", None),
                                        0.5, 2, self.t), d1)
        gW1 = c.gemm(f, dd1, None, True, False, 1.0, 0.0, None, "none", None)
        gb2 = c.gemm(self.ones, dd1, None, False, False, 1.0, 0.0, None, "none", None).reshape(-1)
        df = c.gemm(dd1, self.W1, None, False, True, 1.0, 0.0, None, "none", None).reshape(p.shape)
        dh2 = c.relu_backward(c.maxpool2d_backward(c.dropout(df, 0.25, 1, self.t), h2, pool_size=2), h2)
        dh1, gk2, gkb2 = c.conv2d_backward(dh2, h1, self.k2)
        _, gk1, gkb1 = c.conv2d_backward(c.relu_backward(dh1, h1), self.x, self.k1, dx=False)
        self.t += 1
        c.adam_update(self.params, [gk1, gk2, gW1, gW2, gkb1, gkb2, gb2, gb3], self.m, self.v,
                      learning_rate=1e-3, step=self.t)


def _graph_row(cuda, case, step, reps):
    """fastnn's step replayed from a CUDA graph (timing only: its scalars, Adam's step count and the dropout
    offsets, are those of the captured call)."""
    step()
    cuda.capture_begin()
    try:
        step()
    finally:
        graph = cuda.capture_end()
    return {"case": case, "lib": "fastnn-graph", "ms": _time(graph.replay, cuda.synchronize, reps)}


def _torch_cnn(torch):
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10)).cuda()


def _torch_rows(torch, case, model, x, y, reps, train=True):
    """torch eager and the same step replayed from a captured CUDA graph."""
    import torch.nn as nn
    rows = []
    if train:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)

        def step():
            opt.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                torch.softmax(model(x), -1)
    rows.append({"case": case, "lib": "torch-eager", "ms": _time(step, torch.cuda.synchronize, reps)})
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    rows.append({"case": case, "lib": "torch-graph", "ms": _time(graph.replay, torch.cuda.synchronize, reps)})
    return rows


def cnn_cases(cuda, torch, reps):
    rows = []
    net = _FastnnCNN(cuda, 128)
    rows.append({"case": "cnn train b128", "lib": "fastnn", "ms": _time(net.step, cuda.synchronize, reps)})
    rows.append(_graph_row(cuda, "cnn train b128", net.step, reps))
    pred = _FastnnCNN(cuda, 1024)
    rows.append({"case": "cnn predict b1024", "lib": "fastnn", "ms": _time(pred.predict, cuda.synchronize, reps)})
    if torch is not None:
        rows += _torch_rows(torch, "cnn train b128", _torch_cnn(torch), torch.randn(128, 1, 28, 28, device="cuda"),
                            torch.randint(0, 10, (128,), device="cuda"), reps)
        rows += _torch_rows(torch, "cnn predict b1024", _torch_cnn(torch), torch.randn(1024, 1, 28, 28, device="cuda"),
                            None, reps, train=False)
    return rows


def mlp_cases(cuda, torch, batch, reps):
    rows = []
    net = _FastnnMLP(cuda, batch)
    rows.append({"case": f"mlp train b{batch}", "lib": "fastnn", "ms": _time(net.step, cuda.synchronize, reps)})
    rows.append(_graph_row(cuda, f"mlp train b{batch}", net.step, reps))
    if torch is None:
        return rows
    import torch.nn as nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).cuda()
    return rows + _torch_rows(torch, f"mlp train b{batch}", model, torch.randn(batch, 784, device="cuda"),
                              torch.randint(0, 10, (batch,), device="cuda"), reps)


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
    rows += cnn_cases(cuda, torch, reps)
    print(f"{'case':<20} {'library':<16} {'ms':>10} {'TFLOP/s':>8}")
    for r in rows:
        tf = f"{r['tflops']:8.2f}" if "tflops" in r else ""
        print(f"{r['case']:<20} {r['lib']:<16} {r['ms']:10.3f} {tf}")
    print("fastnn rows run the kernel tables directly (layers/models do not place weights on a device yet); "
          "fastnn-graph replays one captured step")
    return rows
