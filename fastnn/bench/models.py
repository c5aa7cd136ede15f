"""Keras-API end to end: fit samples/s and predict latency, fastnn vs PyTorch (same run).

Cases (synthetic MNIST-shaped data, float32, fixed seeds; one library per subprocess, thread pools
sized to --threads):
  mlp b32 / mlp b256  Flatten-Dense(128, relu)-Dense(10, softmax), sparse CE, Adam: one fit epoch
  cnn b128            the Keras MNIST CNN (Conv32-Conv64-MaxPool-Dropout-Flatten-Dense128-Dropout-
                      Dense10), categorical CE, Adadelta(1.0): one fit epoch of 1,280 samples
  overhead b32        Dense(8, relu)-Dense(4, softmax) on 8 features: the per-step cost of the loop
  predict b1          the MLP's predict on one sample (latency)
  cnn predict b1024   the CNN's predict on 2,048 samples with batch_size=1024
torch runs the idiomatic equivalent (nn.Sequential, CrossEntropyLoss on logits, randperm batches).
--quick leaves out the CNN cases. --clock cpu times by thread CPU time (steadier on a busy machine;
single-threaded runs only).

    fastnn-bench models [--quick] [--threads N] [--clock wall|cpu]     (default: 1 thread)
"""
import time

import numpy as np

from fastnn.bench import _harness as H

CASES = {"mlp b32": (6400, 32), "mlp b256": (25600, 256), "cnn b128": (1280, 128), "overhead b32": (6400, 32),
         "predict b1": (1, 1), "cnn predict b1024": (2048, 1024)}


def _data(case, n):
    rng = np.random.default_rng(0)
    if case == "overhead b32":
        return rng.random((n, 8), dtype=np.float32), rng.integers(0, 4, n)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


def _fastnn_job(case, n, bs):
    import fastnn as keras
    from fastnn import layers
    keras.utils.set_random_seed(0)
    x, y = _data(case, n)
    if case.startswith("cnn"):
        model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                  layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(), layers.Dropout(0.25),
                                  layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
                                  layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adadelta(learning_rate=1.0), "categorical_crossentropy")
        y = keras.utils.to_categorical(y, 10)
    else:
        head = [layers.Dense(8, activation="relu")] if case == "overhead b32" else [layers.Flatten(),
                                                                                     layers.Dense(128, activation="relu")]
        model = keras.Sequential([keras.Input(x.shape[1:])] + head + [layers.Dense(10 if x.ndim > 2 else 4,
                                                                                   activation="softmax")])
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    if "predict" in case:
        return lambda: model.predict(x, batch_size=bs, verbose=0)
    return lambda: model.fit(x, y, batch_size=bs, epochs=1, verbose=0)


def _torch_job(case, n, bs):
    import torch
    from torch import nn
    torch.manual_seed(0)
    x, y = _data(case, n)
    x = torch.from_numpy(x if x.ndim == 2 else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(y)
    if case.startswith("cnn"):
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                              nn.Linear(128, 10))
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    else:
        width = (8, 8, 4) if case == "overhead b32" else (784, 128, 10)
        model = nn.Sequential(nn.Flatten(), nn.Linear(width[0], width[1]), nn.ReLU(), nn.Linear(width[1], width[2]))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if "predict" in case:
        model.eval()

        def predict():
            with torch.inference_mode():
                return np.concatenate([torch.softmax(model(x[i:i + bs]), -1).numpy() for i in range(0, n, bs)])
        return predict
    crit = nn.CrossEntropyLoss()

    def epoch():
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            crit(model(x[idx]), y[idx]).backward()
            opt.step()
    return epoch


def cases(args):
    return args.cases.split(",") if args.cases else [c for c in CASES if not (args.quick and c.startswith("cnn"))]


def worker(args):
    lib, threads = args.worker, args.threads[0]
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    else:
        import fastnn
        fastnn.set_num_threads(threads)
    timer = time.thread_time if args.clock == "cpu" else time.perf_counter
    for case in cases(args):
        n, bs = CASES[case]
        job = (_torch_job if lib == "torch" else _fastnn_job)(case, n, bs)
        job()  # warm-up (first-call costs, allocations)
        reps = 200 if n == 1 else 1
        times = []
        for _ in range(5):
            t0 = timer()
            for _ in range(reps):
                job()
            times.append((timer() - t0) / reps)
        times.sort()
        H.emit(lib=lib, case=case, threads=threads, median=times[2], min=times[0], n=n)


def table(rows, names):
    out = []
    for case in names:
        n = CASES[case][0]
        f, t = rows.get((case, "fastnn")), rows.get((case, "torch"))
        unit = (lambda r: f"{r['median'] * 1e6:.0f} us") if n == 1 else (
            lambda r: f"{n / r['median']:,.0f}/s")
        ratio = f"{t['median'] / f['median']:.2f}x" if t else "-"
        out.append([case, unit(f), unit(t) if t else "-", ratio])
    return H.markdown_table(["case", "fastnn", "torch", "fastnn speed-up"], out)


def main(args):
    names = cases(args)
    libs = ["fastnn"] + (["torch"] if H.have("torch") else [])
    out = {}
    for t in args.threads or [1]:
        flags = H.worker_flags(args) + ["--cases", ",".join(names)]
        rows = {(r["case"], lib): r for lib in libs for r in H.run_worker("models", lib, t, flags)}
        print(f"# {H.machine_line()}; {t} thread(s), {args.clock} clock, medians of 5")
        print(table(rows, names))
        out[t] = list(rows.values())
    return out
