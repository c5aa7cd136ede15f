"""Batch pipeline benchmark: fastnn._pipeline.BatchLoader vs numpy fancy indexing + astype.

    python benchmarks/bench_pipeline.py [--quick] [--threads N]     # prints a markdown table
    pytest benchmarks/bench_pipeline.py                               # pytest-benchmark mode

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
Numbers are medians of per-batch times over whole passes.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

N, SHAPE = 60000, (28, 28)
BATCHES = (32, 128)


def _setup_env(threads):
    """Re-run in a clean environment: BLAS thread count fixed, OPENBLAS_CORETYPE/L2_SIZE unset
    (this machine's Haswell override halves numpy's GEMM speed)."""
    want = str(threads)
    if os.environ.get("_FASTNN_BENCH_ENV") == want:
        return
    env = dict(os.environ, _FASTNN_BENCH_ENV=want, OMP_NUM_THREADS=want, OPENBLAS_NUM_THREADS=want,
               MKL_NUM_THREADS=want)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    sys.exit(subprocess.call([sys.executable] + sys.argv, env=env))


def make_data():
    import numpy as np
    r = np.random.default_rng(0)
    return r.integers(0, 256, (N,) + SHAPE, dtype=np.uint8), r.integers(0, 10, N, dtype=np.uint8)


class Step:
    """A stand-in for a training step of the tutorial MLP (784-128-10): forward + backward GEMMs."""

    def __init__(self, bs):
        import numpy as np
        r = np.random.default_rng(1)
        self.w1 = r.normal(size=(784, 128)).astype(np.float32)
        self.w2 = r.normal(size=(128, 10)).astype(np.float32)

    def __call__(self, xb, yb):
        import numpy as np
        x = xb.reshape(len(xb), -1)
        h = x @ self.w1
        np.maximum(h, 0, out=h)
        o = h @ self.w2
        gh = o @ self.w2.T
        return x.T @ gh, h.T @ o


def _sleep_step(xb, yb):
    time.sleep(0.0005)


def numpy_fancy(x, y, bs):
    import numpy as np
    rng = np.random.default_rng(0)

    def epoch():
        perm = rng.permutation(len(x))
        for k in range(0, len(x), bs):
            idx = perm[k:k + bs]
            yield x[idx].astype(np.float32), y[idx].astype(np.int64)
    return epoch


def numpy_take(x, y, bs):
    import numpy as np
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
    import numpy as np
    x, y = make_data()
    reps = 3 if quick else 7
    rows = []
    for bs in BATCHES:
        variants = {"numpy fancy+astype": numpy_fancy(x, y, bs), "numpy take+copyto": numpy_take(x, y, bs),
                    "loader sync": loader(x, y, bs, False), "loader prefetch": loader(x, y, bs, True)}
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for the simulated step")
    args = ap.parse_args()
    _setup_env(args.threads)
    import numpy as np
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        commit = "?"
    print(f"# batch pipeline: {N}x{SHAPE[0]}x{SHAPE[1]} uint8 -> float32, labels uint8 -> int64; "
          f"numpy {np.__version__}; threads {args.threads}; {os.cpu_count()} cores; commit {commit}")
    print(table(measure(args.quick)))


# ------------------------------------------------------------------ pytest-benchmark mode
try:
    import pytest
except ImportError:   # plain-script mode needs no pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def data():
        return make_data()

    @pytest.mark.parametrize("bs", BATCHES)
    @pytest.mark.parametrize("variant", ["numpy fancy+astype", "numpy take+copyto", "loader sync", "loader prefetch"])
    def test_pipeline_epoch(benchmark, data, bs, variant):
        x, y = data
        fn = {"numpy fancy+astype": lambda: numpy_fancy(x, y, bs), "numpy take+copyto": lambda: numpy_take(x, y, bs),
              "loader sync": lambda: loader(x, y, bs, False), "loader prefetch": lambda: loader(x, y, bs, True)}[variant]()
        benchmark(time_pass, fn, None, 10**9)


if __name__ == "__main__":
    main()
