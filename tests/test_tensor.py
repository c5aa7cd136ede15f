"""Tensor API and the backward engine: accumulation, fan-out, no_grad, graph freeing, errors."""
import gc
import tracemalloc

import numpy as np
import pytest

import fastnn
from fastnn import Tensor, no_grad, tensor
from fastnn.tensor import _FREED, Function


def test_construction_is_float32():
    for data in ([1, 2, 3], np.arange(3, dtype=np.int64), np.arange(3, dtype=np.float64), 2.5):
        t = tensor(data)
        assert t.dtype == np.float32
        assert t.requires_grad is False and t.grad is None
    t = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and len(t) == 2 and t.requires_grad
    assert np.asarray(t).dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.numpy() is t.data
    assert tensor(3.0).item() == 3.0 and float(tensor([2.0])) == 2.0
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(TypeError):
        len(tensor(1.0))


def test_tensor_copies_but_Tensor_wraps():
    a = np.ones(3, np.float32)
    assert tensor(a).data is not a
    assert Tensor(a).data is a
    b = tensor(tensor(a))
    assert b.data is not a and b.requires_grad is False


def test_repr():
    assert repr(tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"


def test_scalar_backward_and_accumulation():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    (x * 3).sum().backward()  # accumulates
    np.testing.assert_allclose(x.grad.numpy(), [5, 7, 9])
    x.zero_grad()
    assert x.grad is None


def test_backward_explicit_grad_and_errors():
    x = tensor([[1.0, 2.0]], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"one-element.*\(1, 2\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\).*\(1, 2\)"):
        y.backward(np.ones(2))
    y.backward(np.array([[1.0, 10.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2, 20]])
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).sum().backward()


def test_fan_out():
    x = tensor([1.0, -2.0], requires_grad=True)
    y = x * x + x          # x used three times
    z = y * y              # y used twice
    z.sum().backward()
    xv = np.array([1.0, -2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * (xv * xv + xv) * (2 * xv + 1), rtol=1e-6)


def test_leaf_grad_is_not_aliased():
    a = tensor([1.0, 2.0], requires_grad=True)
    b = tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data *= 5
    np.testing.assert_array_equal(b.grad.numpy(), [1, 1])


def test_no_grad():
    w = tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = (w * 2).sum()
        assert not fastnn.is_grad_enabled()
    assert fastnn.is_grad_enabled()
    assert y.requires_grad is False and y._ctx is None

    @no_grad()
    def f(t):
        return t * 3
    assert f(w).requires_grad is False
    assert (w * 3).requires_grad is True


def test_detach_and_constants():
    w = tensor([1.0, 2.0], requires_grad=True)
    d = w.detach()
    assert d.requires_grad is False and d.data is w.data
    y = (w * d).sum()
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [1, 2])
    assert d.grad is None
    c = tensor([5.0, 6.0])  # requires_grad=False: no graph through it
    assert (c * 2).requires_grad is False


def test_graph_is_freed_and_second_backward_raises():
    x = tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    loss = (h * h).sum()
    loss.backward()
    assert loss._ctx is _FREED and h._ctx is _FREED  # nodes and their saved arrays dropped
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 3).sum().backward()


def test_deep_chain_no_recursion_limit():
    x = tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_memory_flat_over_1000_steps():
    rng = np.random.default_rng(0)
    w = tensor(rng.standard_normal((16, 8)), requires_grad=True)
    b = tensor(np.zeros(8), requires_grad=True)
    x = rng.standard_normal((32, 16)).astype(np.float32)

    def step():
        y = fastnn.functional.linear(x, w, b, "relu")
        loss = ((y - 1.0) ** 2).mean()
        loss.backward()
        w.data -= 0.01 * w.grad.data
        w.zero_grad()
        b.zero_grad()

    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(100):
            step()
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(1000):
            step()
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - base < 64 * 1024, f"memory grew by {end - base} bytes over 1000 steps"


def test_operators_with_scalars_and_arrays():
    x = tensor([1.0, 2.0], requires_grad=True)
    for y in (x + 1, 1 + x, x - 1, 1 - x, x * 2, 2 * x, x / 2, 2 / x, -x, x ** 2, 2 ** x,
              x + np.ones(2), np.ones(2) + x, np.ones(2) - x, np.float64(2.0) * x, x * np.int64(3)):
        assert isinstance(y, Tensor) and y.dtype == np.float32 and y.requires_grad
    np.testing.assert_allclose((np.array([3.0, 4.0]) - x).numpy(), [2, 2])
    np.testing.assert_allclose((2 ** x).numpy(), [2, 4], rtol=1e-6)
    with pytest.raises(TypeError, match="p must be"):
        x ** x


def test_float64_operands_stay_float32():
    x = tensor([1.0, 2.0])
    assert (x * np.array([1.5, 2.5])).dtype == np.float32
    assert (x + np.float64(1e-3)).dtype == np.float32


def test_grads_never_share_memory():
    x = tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    z = (x + h) + x        # x receives the same array along several paths
    g = np.ones(2, np.float32)
    z.backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])
    assert not np.shares_memory(x.grad.numpy(), g)
    a = tensor(np.ones((2, 2)), requires_grad=True)
    b = tensor(np.ones((2, 2)), requires_grad=True)
    c = tensor(np.ones(4), requires_grad=True)
    loss = (a + b) + c.reshape(2, 2)
    loss.backward(np.ones((2, 2)))
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    assert not np.shares_memory(c.grad.numpy(), a.grad.numpy())
    for t in (a, b, c):
        t.grad.data *= 2  # writable, and changing one leaves the others alone
    np.testing.assert_array_equal(b.grad.numpy(), np.full((2, 2), 2.0))


def test_function_contract():
    class Scale(Function):
        def forward(self, x, k, *, shift=0.0):
            self.k = k
            return x * k + shift

        def backward(self, g):
            return (g * self.k,)  # trailing constant's entry omitted

    x = tensor([1.0, 2.0], requires_grad=True)
    y = Scale.apply(x, 3.0, shift=1.0)
    assert y.dtype == np.float32 and y.requires_grad
    np.testing.assert_allclose(y.numpy(), [4, 7])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3])
    with pytest.raises(TypeError, match="keyword 'shift'"):
        Scale.apply(x, 3.0, shift=x)

    class Seen(Function):
        def forward(self, a, b, c):
            self.seen = self.needs_input_grad
            return a + b

        def backward(self, g):
            return g, None, None

    z = Seen.apply(x, tensor([1.0, 1.0]), "const")
    assert z._ctx.seen == (True, False, False)
    with no_grad():
        assert Seen.apply(x, x, None).requires_grad is False


class _WrongShape(Function):
    def forward(self, a):
        return a.sum()

    def backward(self, g):
        return (g,)  # wrong: should be broadcast to the input's shape


def test_wrong_gradient_shape_names_the_function():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward returned a gradient of shape \(\)"):
        _WrongShape.apply(x).backward()


def test_wrong_gradient_shape_is_caught_for_intermediate_inputs():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward returned a gradient of shape \(\) for an input of shape \(2,\)"):
        _WrongShape.apply(x * 2).backward()
