"""float64 numpy replays of Keras 3's update rules for Nadam, Adamax, Lion, Ftrl and Adafactor
(keras/src/optimizers/<name>.py, update_step), the oracle of tests/test_optimizers_tail.py."""
import numpy as np


def _nadam(p, g, s, t, hp):
    b1, b2, eps, lr = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7), hp["learning_rate"]
    u_t = b1 * (1 - 0.5 * 0.96 ** t)
    u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
    s["u_product"] = s.get("u_product", 1.0) * u_t  # the running product, this step included
    m, v = s["m"], s["v"]
    m += (g - m) * (1 - b1)
    v += (g * g - v) * (1 - b2)
    m_hat = u_t1 * m / (1 - s["u_product"] * u_t1) + (1 - u_t) * g / (1 - s["u_product"])
    v_hat = v / (1 - b2 ** t)
    return p - m_hat * lr / (np.sqrt(v_hat) + eps)


def _adamax(p, g, s, t, hp):
    b1, b2, eps, lr = hp.get("beta_1", 0.9), hp.get("beta_2", 0.999), hp.get("epsilon", 1e-7), hp["learning_rate"]
    s["m"] += (g - s["m"]) * (1 - b1)
    s["u"] = np.maximum(b2 * s["u"], np.abs(g))
    return p - lr * s["m"] / ((1 - b1 ** t) * (s["u"] + eps))


def _lion(p, g, s, t, hp):
    b1, b2, lr = hp.get("beta_1", 0.9), hp.get("beta_2", 0.99), hp["learning_rate"]
    p = p - lr * np.sign(s["m"] * b1 + g * (1 - b1))
    s["m"] = s["m"] * b2 + g * (1 - b2)
    return p


def _ftrl(p, g, s, t, hp):
    lr, power = hp["learning_rate"], hp.get("learning_rate_power", -0.5)
    l1, l2 = hp.get("l1", 0.0), hp.get("l2", 0.0) + hp.get("beta", 0.0) / (2 * lr)
    if "acc" not in s:
        s["acc"] = np.full_like(p, hp.get("initial_accumulator_value", 0.1))
    use = g + 2 * hp.get("l2_shrinkage", 0.0) * p
    new = s["acc"] + g * g
    s["linear"] = s["linear"] + use - (new ** -power - s["acc"] ** -power) / lr * p
    quadratic = new ** -power / lr + 2 * l2
    s["acc"] = new
    return (np.clip(s["linear"], -l1, l1) - s["linear"]) / quadratic


def _rms(x):
    return np.sqrt(np.mean(np.square(x)))


def _adafactor(p, g, s, t, hp):
    lr = hp["learning_rate"]
    if hp.get("relative_step", True):
        lr = min(lr, 1 / np.sqrt(t))
    rho = min(lr, 1 / np.sqrt(t))
    alpha = max(hp.get("epsilon_2", 1e-3), _rms(p)) * rho
    reg = g * g + hp.get("epsilon_1", 1e-30)
    b2t = 1 - t ** hp.get("beta_2_decay", -0.8)
    if p.ndim >= 2:
        s["r"] = b2t * s.get("r", 0.0) + (1 - b2t) * reg.mean(-1)
        s["c"] = b2t * s.get("c", 0.0) + (1 - b2t) * reg.mean(-2)
        s["v"] = (s["r"] / s["r"].mean(-1, keepdims=True))[..., None] * s["c"][..., None, :]
    else:
        s["v"] = b2t * s["v"] + (1 - b2t) * reg
    u = g / np.sqrt(s["v"])
    return p - alpha * u / max(1.0, _rms(u) / hp.get("clip_threshold", 1.0))


RULES = {"nadam": _nadam, "adamax": _adamax, "lion": _lion, "ftrl": _ftrl, "adafactor": _adafactor}


def replay_tail(name, p, grads, hp):
    """The parameter after each step; Keras's decoupled weight decay first (p -= p * wd * lr)."""
    p = p.astype(np.float64).copy()
    s = {"m": np.zeros_like(p), "v": np.zeros_like(p), "u": np.zeros_like(p), "linear": np.zeros_like(p)}
    out = []
    for t, g in enumerate(grads, start=1):
        p = p - p * hp.get("weight_decay", 0.0) * hp["learning_rate"]
        p = RULES[name](p, g.astype(np.float64), s, t, hp)
        out.append(p.copy())
    return out


def replay_amsgrad(p, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Keras Adam with amsgrad: v_hat = max(v_hat, v) replaces v in the step."""
    p = p.astype(np.float64).copy()
    m, v, vh = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        vh = np.maximum(vh, v)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - m * alpha / (np.sqrt(vh) + eps)
        out.append(p.copy())
    return out
