"""Synchronized BatchNormalization under DataParallel (Keras's SyncBatchNormalization behaviour): during a
distributed fit every rank normalizes with the statistics of the GLOBAL batch, so a model with
BatchNormalization trains as it does in one process, and the moving statistics are the same on every rank.

While fit runs, each trainable BatchNormalization layer of the plan gets these training-mode passes (its
inference pass, and everything outside fit, are the layer's own):

forward (x: (..., C), this rank's n_r rows of the global batch of N):
    per channel, float64: [sum x, sum x^2] and n_r, summed over the ranks (``World.step_sum``, rank order)
    mean = S1 / N, var = S2 / N - mean^2 (biased, as Keras), y = (x - mean) / sqrt(var + eps) * gamma + beta
    moving = moving * momentum + batch * (1 - momentum), with the global batch's statistics
backward (dy = d(this rank's mean loss)/dy; the rank's share of the global loss is w = n_r / N):
    A = sum over ranks of w * sum(dy * gamma), C = the same of w * sum(dy * gamma * xhat)  (one exchange)
    dx = inv * (dy * gamma - (A + xhat * C) / n_r)
    dgamma, dbeta = this rank's sums (the gradient reducer weights them by w and adds them up)
With one rank this is the usual batch-norm gradient. A rank without rows in a step (a last batch of fewer
rows than ranks) joins the same exchanges with zeros (``empty_step``).
"""
import numpy as np

from fastnn.distribution import passes

_F32 = np.float32


def synced_layers(plan):
    """The plan's steps (index, layer) whose layer is a BatchNormalization, in forward order."""
    from fastnn.layers.normalization import BatchNormalization
    return [(k, layer) for k, layer in enumerate(plan.layers) if isinstance(layer, BatchNormalization)]


class _Ctx:
    __slots__ = ("xhat", "inv", "gamma", "shape", "rows")

    def __init__(self, xhat, inv, gamma, shape, rows):
        self.xhat, self.inv, self.gamma, self.shape, self.rows = xhat, inv, gamma, shape, rows


def _update_moving(layer, mean, var):
    m = _F32(layer.momentum)
    for moving, batch in ((layer.moving_mean, mean), (layer.moving_variance, var)):
        moving.value *= m
        moving.value += batch * (1 - m)


def _global_moments(world, layer, sums, rows):
    """(mean, var) in float32 of the global batch from this rank's [sum x, sum x^2] (float64) and rows."""
    total = world.step_sum(np.concatenate([sums, [float(rows)]]))
    c = (len(total) - 1) // 2
    n = total[-1]
    mean = total[:c] / n
    var = np.maximum(total[c:2 * c] / n - mean * mean, 0.0)
    mean, var = mean.astype(_F32), var.astype(_F32)
    _update_moving(layer, mean, var)
    return mean, var


def install(world, sync, steps):
    """Give each layer of ``steps`` its synchronized training passes (passes.restore takes them away);
    ``sync.weight`` is this rank's share of the step's global batch."""
    for layer in {id(layer): layer for _, layer in steps}.values():
        forward, backward = passes.own(layer)

        def synced_forward(x, training, need_dx=True, *rest, _forward=forward, layer=layer):
            if not (training and layer._trainable):
                return _forward(x, training, need_dx, *rest)
            c = x.shape[-1]
            x2 = x.reshape(-1, c)
            sums = np.concatenate([x2.sum(axis=0, dtype=np.float64), np.einsum("ij,ij->j", x2, x2, dtype=np.float64)])
            mean, var = _global_moments(world, layer, sums, len(x2))
            inv = (1.0 / np.sqrt(var + _F32(layer.epsilon))).astype(_F32)
            xhat = (x2 - mean) * inv
            gamma = layer.gamma.value if layer.scale else None
            y = xhat * gamma if gamma is not None else xhat.copy()
            if layer.center:
                y += layer.beta.value
            return y.reshape(x.shape), _Ctx(xhat, inv, gamma, x.shape, len(x2))

        def synced_backward(ctx, dy, _backward=backward, layer=layer):
            if not isinstance(ctx, _Ctx):
                return _backward(ctx, dy)
            xhat, inv = ctx.xhat, ctx.inv
            dy2 = dy.reshape(xhat.shape)
            dbeta = dy2.sum(axis=0)
            dgamma = (dy2 * xhat).sum(axis=0)
            if layer.scale:
                layer.gamma.grad = dgamma
            if layer.center:
                layer.beta.grad = dbeta
            g = ctx.gamma if ctx.gamma is not None else _F32(1)
            w = sync.weight
            total = world.step_sum(np.concatenate([dbeta * g, dgamma * g]).astype(np.float64) * w)
            c = len(dbeta)
            a, cc = total[:c].astype(_F32), total[c:].astype(_F32)
            dx = inv * (dy2 * g - (a + xhat * cc) / _F32(ctx.rows))
            return dx.reshape(ctx.shape)

        passes.replace(layer, synced_forward, synced_backward)


def empty_step(world, plan, steps):
    """A rank without rows joins the step's statistics exchanges with zeros, in the order the others make
    them (forwards in step order, then the backwards that run, in reverse) and keeps the same moving
    statistics."""
    active = [(k, layer) for k, layer in steps if layer._trainable]
    for _, layer in active:
        c = layer.moving_mean.value.shape[-1]
        _global_moments(world, layer, np.zeros(2 * c), 0)
    for k, layer in reversed(active):
        if plan.back[k]:
            world.step_sum(np.zeros(2 * layer.moving_mean.value.shape[-1]))
