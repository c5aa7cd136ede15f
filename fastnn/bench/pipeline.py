"""Batch pipeline table: fastnn._pipeline.BatchLoader vs numpy fancy indexing + astype.

Data: MNIST-shaped, 60000 x 28 x 28 uint8 images and uint8 labels; batches of 32 and 128, shuffled
every epoch; out: float32 images and int64 labels. Rows:
  numpy fancy+astype   x[idx].astype(float32), y[idx].astype(int64) (a new array per batch: what a
                       Python training loop does, e.g. Keras's numpy adapter or a hand-written loop)
  numpy take+copyto    np.take(..., out=) into a reused uint8 buffer, np.copyto into a reused float32 one
  loader sync          BatchLoader(prefetch=False): gather + cast in one nogil pass, reused buffer
  loader prefetch      BatchLoader(prefetch=True) with an idle consumer: exposes the hand-off cost
  + step               the same, each batch followed by a ~MLP 784-128-10 forward+backward in numpy
                       (GIL released), so the prefetch thread can work while the step runs;
                       "overhead" = time per batch minus the step alone.
  + sleep              each batch followed by time.sleep(0.5 ms): a step that leaves the CPU free
                       (as a step running its kernels on other cores would); only the caller-thread
                       CPU column matters there: it shows the gather leaving the training thread.
Numbers are medians of per-batch times over whole passes. Every variant runs in one worker whose
BLAS/OpenMP thread count (--threads, for the simulated step) is fixed before numpy loads
(_harness.peer_env, which also unsets this machine's OpenBLAS Haswell override).

    fastnn-bench pipeline [--quick] [--threads N]     (default: 1 thread)
"""
import os
import statistics
import time

import numpy as np

from fastnn.bench import _harness as H

N, SHAPE = 60000, (28, 28)
BATCHES = (32, 128)


def make_data():
    r = np.random.default_rng(0)
    return r.integers(0, 256, (N,) + SHAPE, dtype=np.uint8), r.integers(0, 10, N, dtype=np.uint8)


class Step:
    """A stand-in for a training step of the tutorial MLP (784-128-10): forward + backward GEMMs."""

    def __init__(self, bs):
        r = np.random.default_rng(1)
        self.w1 = r.normal(size=(784, 128)).astype(np.float32)
        self.w2 = r.normal(size=(128, 10)).astype(np.float32)

    def __call__(self, xb, yb):
        x = xb.reshape(len(xb), -1)
        h = x @ self.w1
        np.maximum(h, 0, out=h)
        o = h @ self.w2
        gh = o @ self.w2.T
        return x.T @ gh, h.T @ o


def _sleep_step(xb, yb):
    time.sleep(0.0005)


def numpy_fancy(x, y, bs):
    rng = np.random.default_rng(0)

    def epoch():
        perm = rng.permutation(len(x))
        for k in range(0, len(x), bs):
            idx = perm[k:k + bs]
            yield x[idx].astype(np.float32), y[idx].astype(np.int64)
    return epoch


def numpy_take(x, y, bs):
    rng = np.random.default_rng(0)
    tx, ty = np.empty((bs,) + x.shape[1:], x.dtype), np.empty(bs, y.dtype)
    bx, by = np.empty((bs,) + x.shape[1:], np.float32), np.empty(bs, np.int64)

    def epoch():
        perm = rng.permutation(len(x))
        for k in range(0, len(x), bs):
            idx = perm[k:k + bs]
            n = len(idx)
            np.take(x, idx, axis=0, out=tx[:n])
            np.take(y, idx, axis=0, out=ty[:n])
            np.copyto(bx[:n], tx[:n])
            np.copyto(by[:n], ty[:n])
            yield bx[:n], by[:n]
    return epoch


def loader(x, y, bs, prefetch):
    from fastnn._pipeline import BatchLoader
    L = BatchLoader(x, y, batch_size=bs, shuffle=True, seed=0, prefetch=prefetch)
    return L.epoch


# variant name -> its epoch function for (x, y, batch size)
VARIANTS = {"numpy fancy+astype": numpy_fancy, "numpy take+copyto": numpy_take,
            "loader sync": lambda x, y, bs: loader(x, y, bs, False),
            "loader prefetch": lambda x, y, bs: loader(x, y, bs, True)}


def time_pass(epoch_fn, step, max_batches):
    """(wall seconds, calling thread's CPU seconds) per batch over a pass of at most max_batches
    batches. The CPU time of the calling thread is what the training thread itself spends: other
    processes on a busy machine barely change it, and prefetching moves the gather out of it."""
    t0, c0 = time.perf_counter(), time.thread_time()
    n = 0
    for xb, yb in epoch_fn():
        if step is not None:
            step(xb, yb)
        n += 1
        if n == max_batches:
            break
    return (time.perf_counter() - t0) / n, (time.thread_time() - c0) / n


def measure(quick=False):
    """Rows of results (dicts). Variants are interleaved rep by rep so load bursts from other
    processes hit all of them alike."""
    x, y = make_data()
    reps = 3 if quick else 7
    rows = []
    for bs in BATCHES:
        variants = {name: make(x, y, bs) for name, make in VARIANTS.items()}
        step = Step(bs)
        step_batches = 200 if quick else 600
        sleep_batches = 100 if quick else 200
        nostep_batches = 10**9
        samples = {}
        for _ in range(reps + 1):                         # the first round is a warm-up
            for name, fn in variants.items():
                samples.setdefault(name, []).append(time_pass(fn, None, nostep_batches))
                samples.setdefault(name + " + step", []).append(time_pass(fn, step, step_batches))
                samples.setdefault(name + " + sleep", []).append(time_pass(fn, _sleep_step, sleep_batches))
            xb = np.zeros((bs,) + SHAPE, np.float32)
            samples.setdefault("step alone", []).append(time_pass(lambda: ((xb, None) for _ in range(step_batches)),
                                                                  step, step_batches))
        med = {k: (statistics.median(t[0] for t in v[1:]), statistics.median(t[1] for t in v[1:]))
               for k, v in samples.items()}
        base = med["numpy fancy+astype"][0]
        base_step = med["numpy fancy+astype + step"][0]
        for name in (list(variants) + [v + " + step" for v in variants] + ["step alone"]
                     + [v + " + sleep" for v in variants]):
            t, cpu = med[name]
            with_step = name.endswith(" + step")
            rows.append({"batch": bs, "variant": name, "us": t * 1e6, "cpu_us": cpu * 1e6, "samples_s": bs / t,
                         "vs_numpy": None if name == "step alone" or name.endswith(" + sleep")
                         else (base_step if with_step else base) / t,
                         "overhead_us": (t - med["step alone"][0]) * 1e6 if with_step else None,
                         "cpu_overhead_us": (cpu - med["step alone"][1]) * 1e6 if with_step else None})
    return rows


def table(rows):
    head = ("| batch | variant | wall µs/batch | samples/s | speed-up vs numpy fancy+astype | "
            "overhead over the step, wall µs | caller-thread CPU µs/batch | overhead over the step, caller CPU µs |")
    out = [head, "|---:|---|---:|---:|---:|---:|---:|---:|"]

    def f(v, fmt):
        return "-" if v is None else fmt.format(v)
    for r in rows:
        out.append(f"| {r['batch']} | {r['variant']} | {r['us']:.1f} | {r['samples_s']:,.0f} | "
                   f"{f(r['vs_numpy'], '{:.2f}×')} | {f(r['overhead_us'], '{:.1f}')} | {r['cpu_us']:.1f} | "
                   f"{f(r['cpu_overhead_us'], '{:.1f}')} |")
    return "\n".join(out)


def worker(args):
    """Every variant in this one process (args.worker is "all"), interleaved."""
    H.emit_rows(measure(args.quick))


def main(args):
    return H.one_worker_main("pipeline", args, lambda t: (
        f"# batch pipeline: {N}x{SHAPE[0]}x{SHAPE[1]} uint8 -> float32, labels uint8 -> int64; "
        f"numpy {np.__version__}; threads {t}; {os.cpu_count()} cores; commit {H.commit()}"), table)
