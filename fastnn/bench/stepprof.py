# NOTE: not named profile.py: the worker runs with this folder first on sys.path, and torch imports cProfile -> profile.
"""Where one fastnn training step spends its time (``python -m fastnn.bench train --profile``).

Runs model.fit in this process on the benchmark's models with each layer's ``_forward``/``_backward``, the
loss and the optimizer update timed (wrappers on the instances, ~1 µs each; medians over 3 epochs); the rest of the step is the
batch pipeline, fit's loop, metrics and callbacks ("other"). A cProfile of the same run then lists the
functions with the most own time (kernels show up as ``fastnn._C`` builtins).
"""
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict

from fastnn.bench import _harness as H


def _load_worker():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import _train_worker
    finally:
        sys.path.pop(0)
    return _train_worker


def _timed(acc, key, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[key] += time.perf_counter() - t0
    return wrapper


def instrument(model, acc):
    """Time every layer's forward/backward, the loss and the optimizer step of `model` into acc."""
    for i, layer in enumerate(model._layers):
        name = f"{i}:{type(layer).__name__}"
        layer._forward = _timed(acc, (name, "forward"), layer._forward)
        layer._backward = _timed(acc, (name, "backward"), layer._backward)
    loss = model.loss
    loss._value_and_grad = _timed(acc, ("loss", "value+grad"), loss._value_and_grad)
    model.optimizer._apply_vars = _timed(acc, ("optimizer", "update"), model.optimizer._apply_vars)


def profile_model(name, nthreads, quick):
    import fastnn
    w = _load_worker()
    fastnn.set_num_threads(nthreads)
    bs, labels, _ = w.MODELS[name]
    n = bs * (8 if quick else 20) if name == "cnn" else (6400 if quick else 32000)
    x, y = w.data(n, labels == "onehot")
    fastnn.utils.set_random_seed(0)
    model = w.keras_model(fastnn, name)
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # warm-up
    runs = []  # per timed epoch: ({part: seconds}, total seconds); medians over 3 epochs (shared machine)
    acc = defaultdict(float)
    instrument(model, acc)
    for _ in range(3):
        acc.clear()
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
        runs.append((dict(acc), time.perf_counter() - t0))
    total = statistics.median(r[1] for r in runs)
    steps = -(-n // bs)
    rows, timed = [], 0.0
    for key in runs[0][0]:
        s = statistics.median(r[0][key] for r in runs)
        timed += s
        rows.append([key[0], key[1], f"{s / steps * 1e6:,.1f}", f"{100 * s / total:.1f}%"])
    rows.append(["other", "batch pipeline, fit loop, metrics, callbacks", f"{(total - timed) / steps * 1e6:,.1f}",
                 f"{100 * (total - timed) / total:.1f}%"])
    rows.append(["total", f"{steps} steps, {n / total:,.0f} samples/s", f"{total / steps * 1e6:,.1f}", "100%"])
    print(f"\n#### fastnn {name} (batch {bs}), threads = {nthreads}: time per training step\n")
    print(H.markdown_table(["part", "what", "µs/step", "share"], rows))

    prof = cProfile.Profile()
    prof.enable()
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)
    prof.disable()
    s = io.StringIO()
    st = pstats.Stats(prof, stream=s)
    st.sort_stats("tottime").print_stats(12)
    lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    print(f"\ncProfile (same fit, {steps} steps; own time, top 12; cProfile itself adds overhead per call):")
    print("\n".join(lines[start:start + 13]))


def main(nthreads, quick):
    print(f"\n### fastnn training-step profile, threads = {nthreads}")
    for name in ("cnn", "mlp32", "mlp256"):
        profile_model(name, nthreads, quick)
