"""Every CUDA kernel against the CPU table (the tested CPU kernels are the oracle) on awkward shapes, the device
array (copies, DLPack), the caching allocator, and host/device mixing errors. Skipped without a GPU:
tools/gpu_check.sh runs it on one."""
import numpy as np
import pytest

import fastnn
from fastnn import backend, devices

if not devices.cuda_available():
    pytest.skip("no usable CUDA GPU (or fastnn built without FASTNN_CUDA=ON): tools/gpu_check.sh runs these",
                allow_module_level=True)

cuda = devices.cuda_module()
cpu = backend.cpu
SIZES = (1, 7, 64, 1000, 65537)


def dev(a, dtype=np.float32):
    return cuda.to_device(np.asarray(a, dtype))


def host(a):
    return cuda.to_host(a)


def rand(*shape, seed=0, lo=-3.0, hi=3.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def close(got, want, rtol=2e-6, atol=2e-6):
    np.testing.assert_allclose(host(got) if not isinstance(got, np.ndarray) else got, want, rtol=rtol, atol=atol)


# ---- device array ----
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3, 5), (2, 3, 7), (65537,)])
def test_roundtrip_shape_dtype_strides(shape):
    x = rand(*shape) if shape else np.float32(1.5).reshape(())
    d = dev(x)
    assert d.shape == x.shape and d.dtype == np.float32 and d.device == "cuda:0"
    assert d.strides == tuple(4 * int(np.prod(shape[i + 1:])) for i in range(len(shape)))  # C-contiguous bytes
    np.testing.assert_array_equal(host(d), x)
    i = cuda.to_device(np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape))
    assert i.dtype == np.int32
    np.testing.assert_array_equal(host(i), np.arange(int(np.prod(shape))).reshape(shape))


def test_implicit_numpy_conversion_is_refused():
    with pytest.raises(TypeError, match="numpy"):
        np.asarray(dev([1.0, 2.0]), np.float32)


def test_tensor_to_and_back():
    t = fastnn.Tensor(rand(4, 3))
    g = t.to("cuda")
    assert g.device == "cuda:0" and type(g.data) is cuda.Array
    back = g.to("cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.data, t.data)


def test_of_returns_the_cuda_table_for_device_arrays_only():
    assert backend.of(dev([1.0])) is cuda
    assert backend.of(np.ones(2, np.float32)) is cpu and backend.of([1.0]) is cpu


def test_dlpack_with_torch_both_ways():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    x = rand(5, 6)
    d = dev(x)
    t = torch.from_dlpack(d)
    assert t.is_cuda and tuple(t.shape) == (5, 6)
    np.testing.assert_array_equal(t.cpu().numpy(), x)
    t2 = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4) * 2
    d2 = cuda.from_dlpack(t2)
    np.testing.assert_array_equal(host(d2), t2.cpu().numpy())
    del t2
    np.testing.assert_array_equal(host(d2), (np.arange(12, dtype=np.float32) * 2).reshape(3, 4))  # kept alive


def test_caching_allocator_is_flat_across_repeats():
    base = cuda.memory_allocated()
    for _ in range(3):
        a = dev(rand(1000, 100))
        b = cuda.relu_forward(a)
        del a, b
    assert cuda.memory_allocated() == base
    reserved = cuda.memory_reserved()
    for _ in range(20):
        a = dev(rand(1000, 100))
        b = cuda.relu_forward(a)
        del a, b
    assert cuda.memory_reserved() == reserved  # reused, not re-allocated
    cuda.empty_cache()
    assert cuda.memory_reserved() == cuda.memory_allocated() == base


# ---- elementwise ----
@pytest.mark.parametrize("name,saves,alpha", [(n, s, a) for n, s, a, _ in fastnn._C.unary_ops])
@pytest.mark.parametrize("n", SIZES)
def test_unary_matches_cpu(name, saves, alpha, n):
    x = rand(n, seed=n, lo=0.05 if name == "log" else -6, hi=6)
    kw = {} if alpha is None else {"alpha": 0.3}
    y = getattr(cpu, name + "_forward")(x, **kw)
    close(getattr(cuda, name + "_forward")(dev(x), **kw), y, rtol=2e-6, atol=1e-6)
    dy = rand(n, seed=n + 1)
    s = y if saves else x
    close(getattr(cuda, name + "_backward")(dev(dy), dev(s), **kw),
          getattr(cpu, name + "_backward")(dy, s, **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,axis", [((1, 1), -1), ((7, 10), -1), ((3, 1000), 1), ((2, 5, 3), 1), ((4, 3, 2), 0)])
@pytest.mark.parametrize("base", ["softmax", "log_softmax"])
def test_softmax_matches_cpu(shape, axis, base):
    x = rand(*shape, seed=3) * 4
    y = getattr(cpu, base + "_forward")(x, axis)
    yd = getattr(cuda, base + "_forward")(dev(x), axis)
    close(yd, y, rtol=1e-5, atol=1e-6)
    dy = rand(*shape, seed=4)
    close(getattr(cuda, base + "_backward")(dev(dy), yd, axis), getattr(cpu, base + "_backward")(dy, y, axis),
          rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("B,K", [(1, 2), (5, 3), (128, 10), (3, 1001)])
@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_xent_and_prob_xent_match_cpu(B, K, sparse):
    rng = np.random.default_rng(B * K)
    x = rand(B, K, seed=K) * 3
    labels = rng.integers(0, K, B)
    t_host = labels if sparse else rng.dirichlet(np.ones(K), B).astype(np.float32)
    t_dev = cuda.to_device(labels.astype(np.int32)) if sparse else dev(t_host)
    loss, lse = cpu.softmax_xent_forward(x, t_host)
    dl, dlse = cuda.softmax_xent_forward(dev(x), t_dev)
    close(dl, loss, 1e-5, 1e-6)
    close(dlse, lse, 1e-6, 1e-6)
    g = rand(B, seed=9)
    close(cuda.softmax_xent_backward(dev(g), dev(x), dlse, t_dev), cpu.softmax_xent_backward(g, x, lse, t_host),
          1e-5, 1e-6)
    close(cuda.softmax_xent_backward(1.0 / B, dev(x), dlse, t_dev), cpu.softmax_xent_backward(1.0 / B, x, lse, t_host),
          1e-5, 1e-7)
    p = cpu.softmax_forward(x)
    close(cuda.prob_xent_forward(dev(p), t_dev), cpu.prob_xent_forward(p, t_host), 1e-5, 1e-6)
    close(cuda.prob_xent_backward(dev(g), dev(p), t_dev), cpu.prob_xent_backward(g, p, t_host), 1e-5, 1e-5)


def test_out_of_range_label_raises():
    with pytest.raises(ValueError, match="label"):
        cuda.softmax_xent_forward(dev(rand(3, 4)), cuda.to_device(np.array([0, 4, 1], np.int32)))


@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error", "binary_crossentropy",
                                  "binary_crossentropy_logits"])
@pytest.mark.parametrize("n", SIZES)
def test_point_losses_match_cpu(name, n):
    p = rand(n, seed=n, lo=0.01, hi=0.99) if name == "binary_crossentropy" else rand(n, seed=n)
    y = rand(n, seed=n + 5, lo=0, hi=1)
    assert getattr(cuda, name + "_forward")(dev(p), dev(y)) == pytest.approx(getattr(cpu, name + "_forward")(p, y),
                                                                             rel=1e-9, abs=1e-12)
    close(getattr(cuda, name + "_backward")(dev(p), dev(y), grad=0.5), getattr(cpu, name + "_backward")(p, y, grad=0.5),
          1e-6, 1e-9)


def test_point_loss_is_deterministic():
    p, y = dev(rand(100003, seed=1)), dev(rand(100003, seed=2))
    assert len({cuda.mean_squared_error_forward(p, y) for _ in range(5)}) == 1


@pytest.mark.parametrize("n", SIZES + (64 * 1000 + 17,))
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_is_the_cpu_philox_stream_bit_for_bit(n, rate):
    x = rand(n, seed=n)
    for seed, offset in [(0, 0), (1234567890123, 7), (2**64 - 1, 2**40 + 3)]:
        np.testing.assert_array_equal(host(cuda.dropout(dev(x), rate, seed, offset)), cpu.dropout(x, rate, seed, offset))


# ---- optimizers (fused over a list of tensors) ----
OPTIMS = [
    ("sgd_update", 1, dict(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_update", 0, dict(learning_rate=0.1)),
    ("adam_update", 2, dict(learning_rate=0.01, step=3, weight_decay=0.004)),
    ("rmsprop_update", 3, dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("rmsprop_update", 1, dict(learning_rate=0.01)),
    ("adagrad_update", 1, dict(learning_rate=0.1)),
    ("adadelta_update", 2, dict(learning_rate=1.0)),
]


@pytest.mark.parametrize("name,nslots,kw", OPTIMS)
def test_optimizer_updates_match_cpu_over_many_tensors(name, nslots, kw):
    shapes = [(3, 3, 1, 7), (7,), (1,), (129, 65), (1000,)] * 11  # 55 tensors: more than one launch
    ps = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    gs = [rand(*s, seed=100 + i) for i, s in enumerate(shapes)]
    slots = [[np.full(s, 0.1, np.float32) for s in shapes] for _ in range(nslots)]
    dp, dg = [dev(p) for p in ps], [dev(g) for g in gs]
    dslots = [[dev(s) for s in sl] for sl in slots]
    for _ in range(3):
        getattr(cpu, name)(ps, gs, *slots, **kw)
        getattr(cuda, name)(dp, dg, *dslots, **kw)
    for a, b in zip(dp, ps):
        close(a, b, 1e-5, 1e-6)
    for dsl, sl in zip(dslots, slots):
        for a, b in zip(dsl, sl):
            close(a, b, 1e-5, 1e-6)


# ---- GEMM ----
GEMMS = [(1, 1, 1), (7, 5, 3), (64, 64, 64), (65, 63, 17), (130, 1, 257), (1, 200, 33), (0, 4, 5), (4, 4, 0)]


@pytest.mark.parametrize("backend_name", ["tiled", "cublas"])
@pytest.mark.parametrize("M,N,K", GEMMS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_cpu(backend_name, M, N, K, ta, tb):
    if backend_name == "cublas" and cuda.cublas_path() is None:
        pytest.skip("cuBLAS not installed (pip install fastnn[cuda])")
    cuda.set_gemm_backend(backend_name)
    try:
        a = rand(*((K, M) if ta else (M, K)), seed=1)
        b = rand(*((N, K) if tb else (K, N)), seed=2)
        c = rand(M, N, seed=3)
        bias = rand(N, seed=4)
        want = cpu.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=0.5, beta=0.25, bias=bias, activation="relu")
        got = cuda.gemm(dev(a), dev(b), dev(c), trans_a=ta, trans_b=tb, alpha=0.5, beta=0.25, bias=dev(bias),
                        activation="relu")
        close(got, want, 1e-5, 1e-5 * max(K, 1))
        close(cuda.gemm(dev(a), dev(b), trans_a=ta, trans_b=tb), cpu.gemm(a, b, trans_a=ta, trans_b=tb), 1e-5,
              1e-5 * max(K, 1))
    finally:
        cuda.set_gemm_backend("auto")


def test_tf32_is_off_by_default_and_gemm_is_fp32_exact_enough():
    assert cuda.allow_tf32() is False
    a, b = rand(512, 512, seed=1), rand(512, 512, seed=2)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    got = host(cuda.gemm(dev(a), dev(b)))
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-5  # TF32 would be ~1e-3


# ---- host/device mixing ----
def test_mixing_host_and_device_arrays_raises_type_error():
    d = dev(rand(3, 3))
    with pytest.raises(TypeError, match="host and device"):
        cuda.gemm(d, rand(3, 3))
    with pytest.raises(TypeError, match="host and device"):
        cuda.relu_backward(d, rand(3, 3))
    with pytest.raises(TypeError):
        cpu.relu_forward(d)


# ---- convolution and pooling ----
CONVS = [((1, 5, 5, 1), (3, 3, 1, 1), 1, "valid", 1), ((2, 9, 7, 3), (3, 2, 3, 5), (2, 1), "same", 1),
         ((2, 8, 8, 4), (1, 1, 4, 6), 1, "valid", 1), ((1, 11, 13, 2), (3, 3, 2, 3), 1, "same", (2, 3)),
         ((3, 28, 28, 1), (3, 3, 1, 8), 1, "valid", 1), ((1, 6, 6, 3), (5, 5, 3, 2), 3, "same", 1)]


@pytest.mark.parametrize("xs,ks,strides,padding,dil", CONVS)
def test_conv2d_matches_cpu(xs, ks, strides, padding, dil):
    x, k, b = rand(*xs, seed=1), rand(*ks, seed=2) * 0.3, rand(ks[-1], seed=3)
    kw = dict(strides=strides, padding=padding, dilation_rate=dil)
    want = cpu.conv2d_forward(x, k, b, activation="relu", **kw)
    close(cuda.conv2d_forward(dev(x), dev(k), dev(b), activation="relu", **kw), want, 1e-5, 1e-5)
    dout = rand(*want.shape, seed=4)
    for got, ref in zip(cuda.conv2d_backward(dev(dout), dev(x), dev(k), **kw), cpu.conv2d_backward(dout, x, k, **kw)):
        close(got, ref, 1e-5, 2e-6 * np.abs(ref).max())  # dkernel sums B*OH*OW terms: error scales with the sum


POOLS = [((1, 4, 4, 1), 2, None, "valid"), ((2, 7, 5, 3), 3, 2, "same"), ((1, 9, 9, 2), (2, 3), (1, 2), "valid"),
         ((2, 5, 5, 4), 3, 1, "same")]


@pytest.mark.parametrize("xs,pool,strides,padding", POOLS)
def test_pooling_matches_cpu(xs, pool, strides, padding):
    x = rand(*xs, seed=5)
    kw = dict(pool_size=pool, strides=strides, padding=padding)
    for kind in ("maxpool2d", "avgpool2d"):
        want = getattr(cpu, kind + "_forward")(x, **kw)
        close(getattr(cuda, kind + "_forward")(dev(x), **kw), want, 1e-6, 1e-6)
        dout = rand(*want.shape, seed=6)
        args = (dout, x) if kind == "maxpool2d" else (dout, x)
        close(getattr(cuda, kind + "_backward")(*(dev(a) for a in args), **kw),
              getattr(cpu, kind + "_backward")(*args, **kw), 1e-6, 1e-6)


# ---- a small CNN trained through backend.of on both devices ----
def _to_np(a):
    return a if isinstance(a, np.ndarray) else cuda.to_host(a)


def _train_cnn(put, steps=30, B=16):
    """conv3x3(8)+relu -> maxpool2 -> dense(10) -> softmax cross-entropy, Adam; the same code for both tables:
    `put` places host arrays on the device, every op goes through backend.of."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((B, 12, 12, 1)).astype(np.float32)
    ys = rng.integers(0, 10, B).astype(np.int32)
    k = put(rng.standard_normal((3, 3, 1, 8)).astype(np.float32) * 0.3)
    kb = put(np.zeros(8, np.float32))
    W = put(rng.standard_normal((5 * 5 * 8, 10)).astype(np.float32) * 0.05)
    Wb = put(np.zeros(10, np.float32))
    params = [k, kb, W, Wb]
    m = [put(np.zeros(p.shape, np.float32)) for p in params]
    v = [put(np.zeros(p.shape, np.float32)) for p in params]
    x, y = put(xs), put(ys)
    t = backend.of(x)
    losses = []
    for step in range(1, steps + 1):
        h = t.conv2d_forward(x, k, kb, activation="relu")
        p = t.maxpool2d_forward(h, pool_size=2)
        f = p.reshape(B, -1)
        z = t.gemm(f, W, None, False, False, 1.0, 0.0, Wb, "none", None)
        loss, lse = t.softmax_xent_forward(z, y)
        losses.append(float(_to_np(loss).mean()))
        dz = t.softmax_xent_backward(1.0 / B, z, lse, y)
        dW = t.gemm(f, dz, None, True, False, 1.0, 0.0, None, "none", None)
        dWb = t.gemm(put(np.ones((1, B), np.float32)), dz, None, False, False, 1.0, 0.0, None, "none", None).reshape(-1)
        df = t.gemm(dz, W, None, False, True, 1.0, 0.0, None, "none", None).reshape(p.shape)
        dh = t.relu_backward(t.maxpool2d_backward(df, h, pool_size=2), h)
        _, dk, dkb = t.conv2d_backward(dh, x, k, dx=False)
        t.adam_update(params, [dk, dkb, dW, dWb], m, v, learning_rate=0.01, step=step)
    return np.array(losses)


def test_small_cnn_trains_the_same_on_gpu_and_cpu_with_flat_device_memory():
    cpu_curve = _train_cnn(lambda a: a.copy())
    base = cuda.memory_allocated()
    gpu_curve = _train_cnn(lambda a: cuda.to_device(a))
    assert cpu_curve[-1] < 0.5 * cpu_curve[0]  # it learns
    np.testing.assert_allclose(gpu_curve, cpu_curve, rtol=2e-3)
    assert cuda.memory_allocated() == base  # nothing kept after the run
    reserved = cuda.memory_reserved()
    for _ in range(2):  # more "epochs": every step's buffers come from the cache, none from the driver
        np.testing.assert_array_equal(_train_cnn(lambda a: cuda.to_device(a)), gpu_curve)  # and deterministic
        assert cuda.memory_reserved() == reserved and cuda.memory_allocated() == base


# ---- CUDA graph capture of a training step ----
def test_cuda_graph_replays_a_training_step_as_eager_runs_it():
    rng = np.random.default_rng(0)
    B = 32
    xs, ys = rng.standard_normal((B, 20)).astype(np.float32), rng.integers(0, 5, B).astype(np.int32)
    W0 = (rng.standard_normal((20, 5)) * 0.3).astype(np.float32)

    def make():
        W, b, mW, mb = dev(W0), cuda.zeros((5,)), cuda.zeros((20, 5)), cuda.zeros((5,))
        x, y, ones = dev(xs), cuda.to_device(ys), dev(np.ones((1, B)))

        def step():
            z = cuda.gemm(x, W, None, False, False, 1.0, 0.0, b, "none", None)
            loss, lse = cuda.softmax_xent_forward(z, y)
            dz = cuda.softmax_xent_backward(1.0 / B, z, lse, y)
            dW = cuda.gemm(x, dz, None, True, False, 1.0, 0.0, None, "none", None)
            db = cuda.gemm(ones, dz, None, False, False, 1.0, 0.0, None, "none", None).reshape(-1)
            cuda.sgd_update([W, b], [dW, db], [mW, mb], learning_rate=0.1, momentum=0.9)
            return loss
        return W, step

    W_e, step_e = make()
    eager = [host(step_e()) for _ in range(6)]
    W_g, step_g = make()
    first = host(step_g())  # warm-up outside the capture (cuBLAS workspace, allocator cache)
    cuda.capture_begin()
    assert cuda.is_capturing()
    with pytest.raises(ValueError, match="already"):
        cuda.capture_begin()
    loss = step_g()  # recorded, not run
    graph = cuda.capture_end()
    assert not cuda.is_capturing()
    replayed = []
    for i in range(5):
        graph.replay()
        replayed.append(host(loss))
        if i == 1:
            reserved = cuda.memory_reserved()
    assert cuda.memory_reserved() == reserved  # replays allocate nothing
    np.testing.assert_allclose(np.array([first] + replayed), np.array(eager), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(host(W_g), host(W_e), rtol=1e-6, atol=1e-7)
    assert eager[-1].mean() < eager[0].mean()
    del graph, loss
    with pytest.raises(ValueError, match="no capture"):
        cuda.capture_end()
