"""A user's Loss subclass written as Keras 3 documents it (``call(y_true, y_pred)`` on tensors) computes,
reduces, weights and trains; one without ``call`` says what is missing."""
import numpy as np
import pytest

import fastnn
from fastnn import ops


class ScaledMSE(fastnn.losses.Loss):
    def __init__(self, scale=2.0, name="scaled_mse"):
        super().__init__(name=name)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * ops.mean(ops.square(y_pred - y_true), axis=-1)


def test_user_loss_subclass_values_gradient_and_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    p = rng.standard_normal((32, 1)).astype(np.float32)
    per = 2.0 * ((p - y) ** 2).mean(-1)
    assert float(ScaledMSE()(y, p)) == pytest.approx(per.mean(), rel=1e-6)
    w = np.linspace(0, 1, 32).astype(np.float32)
    assert float(ScaledMSE()(y, p, sample_weight=w)) == pytest.approx((per * w).mean(), rel=1e-6)
    loss = ScaledMSE()
    value, grad = loss._value_and_grad(p.copy(), y)
    np.testing.assert_allclose(grad, 2.0 * 2 * (p - y) / p.size, rtol=1e-5)
    model = fastnn.Sequential([fastnn.layers.Input((3,)), fastnn.layers.Dense(1)])
    model.compile("sgd", loss=ScaledMSE())
    hist = model.fit(x, y, epochs=5, verbose=0).history["loss"]
    assert hist[-1] < hist[0]


def test_loss_subclass_without_call_names_the_public_method():
    class NoCall(fastnn.losses.Loss):
        pass
    with pytest.raises(NotImplementedError, match=r"NoCall must define call\(y_true, y_pred\)"):
        NoCall()([1.0], [1.0])
