"""Gradient checks through a model's plan: the gradient one ``train_on_batch`` step applies, against central
finite differences of ``evaluate``'s loss."""
import numpy as np

import fastnn


def sgd_step_gradient(model, x, y, layer):
    """The loss gradient w.r.t. ``layer``'s weights, read off one ``train_on_batch`` step: the model must be
    compiled with ``SGD(learning_rate=1)`` (no momentum), so the step is ``w_new = w - g``. Every weight of the
    model is restored afterwards."""
    assert isinstance(model.optimizer, fastnn.optimizers.SGD) and model.optimizer.momentum == 0
    saved = model.get_weights()
    before = layer.get_weights()
    model.train_on_batch(x, y)
    after = layer.get_weights()
    model.set_weights(saved)
    return [b.astype(np.float64) - a for b, a in zip(before, after)]


def _loss(model, x, y):
    # the batch in one evaluate chunk; with several outputs or metrics evaluate returns [loss, ...]
    value = model.evaluate(x, y, batch_size=len(y[0] if isinstance(y, (list, tuple)) else y), verbose=0)
    return value[0] if isinstance(value, list) else value


def finite_difference_gradient(model, x, y, layer, eps=1e-3):
    """Central differences of the evaluate loss w.r.t. each of ``layer``'s weights (float64 quotients; the step
    is the one float32 actually represents, not ``eps`` itself)."""
    weights = layer.get_weights()
    grads = []
    for k, w in enumerate(weights):
        g = np.zeros(w.shape)
        for idx in np.ndindex(w.shape):
            up, down = np.float32(w[idx] + eps), np.float32(w[idx] - eps)
            values = []
            for value in (up, down):
                moved = [v.copy() for v in weights]
                moved[k][idx] = value
                layer.set_weights(moved)
                values.append(_loss(model, x, y))
            g[idx] = (values[0] - values[1]) / (np.float64(up) - np.float64(down))
        grads.append(g)
    layer.set_weights(weights)
    return grads


def assert_plan_gradients(model, x, y, layers, rtol=2e-3, atol=5e-4):
    """train_on_batch's gradient of each layer (a name in ``model``, or a Layer, e.g. inside a nested model)
    equals the finite-difference one."""
    for layer in layers:
        if isinstance(layer, str):
            layer = model.get_layer(layer)
        name = layer.name
        applied = sgd_step_gradient(model, x, y, layer)
        numeric = finite_difference_gradient(model, x, y, layer)
        assert len(applied) == len(numeric) > 0, name
        # a gradient of ~0 would pass trivially: the check must see a real signal
        assert max(np.abs(n).max() for n in numeric) > 20 * atol, f"layer {name!r}: gradient too small to check"
        for a, n in zip(applied, numeric):
            np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"layer {name!r}")
