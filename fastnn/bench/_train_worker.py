"""One end-to-end training/inference measurement in a fresh process: ``python _train_worker.py LIB MODEL``.

Run by path (not as ``-m``) so that it needs neither fastnn's compiled module nor the other peers:
the Keras worker runs under a separate interpreter that has tensorflow-cpu + keras and no fastnn.
LIB is fastnn, torch or keras; MODEL is cnn, mlp32, mlp256 or mlp32f (see ``fastnn.bench.train``). The thread
count comes from OMP_NUM_THREADS (set by the parent). Prints ``RESULT {json}`` lines:
train rows (samples/s per timed epoch, final loss) and predict rows, then one ``rss`` row (the peak
resident set of this process, ru_maxrss, which includes the library's import).
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np

# model name: (batch size, kind of labels, what is predicted, predict batch)
MODELS = {"cnn": (128, "onehot", 1024), "mlp32": (32, "sparse", 1), "mlp256": (256, "sparse", None),
          "mlp32f": (32, "sparse", None)}


def emit(**row):
    print("RESULT " + json.dumps(row), flush=True)


def data(n, onehot, seed=0):
    """Synthetic MNIST-shaped data: images in [0, 1] (n, 28, 28, 1), labels 0..9 (int or one-hot)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    if onehot:
        y = np.eye(10, dtype=np.float32)[y]
    return x, y


def keras_model(keras, name):
    """The identical Keras code for fastnn (``import fastnn as keras``) and Keras 3."""
    layers = keras.layers
    if name == "cnn":
        model = keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)), layers.Dropout(0.25), layers.Flatten(),
            layers.Dense(128, activation="relu"), layers.Dropout(0.5),
            layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adadelta(learning_rate=1.0),
                      metrics=["accuracy"])
    elif name == "mlp32f":  # the same MLP written with the Functional API
        inputs = keras.Input((28, 28, 1))
        hidden = layers.Dense(128, activation="relu")(layers.Flatten()(inputs))
        model = keras.Model(inputs, layers.Dense(10, activation="softmax")(hidden))
        model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(), metrics=["accuracy"])
    else:
        model = keras.Sequential([
            keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(),
                      metrics=["accuracy"])
    return model


def timed_fit(keras, model, x, y, batch_size, epochs):
    """model.fit for one warm-up epoch plus ``epochs`` timed ones: (the timed epochs' seconds, final loss)."""
    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    hist = model.fit(x, y, batch_size=batch_size, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[timer])
    return timer.times[1:], float(hist.history["loss"][-1])


def run_keras_api(keras, name, args, nthreads):
    """fastnn and Keras: model.fit with an epoch-timing callback, model.predict."""
    bs, labels, pbs = MODELS[name]
    x, y = data(args.n, labels == "onehot")
    keras.utils.set_random_seed(0)
    model = keras_model(keras, name)
    times, loss = timed_fit(keras, model, x, y, bs, args.epochs)
    emit_train(name, bs, args.n, times, loss, nthreads)
    if pbs is not None:
        xp = x[:pbs] if pbs == 1 else data(args.npredict, False, seed=1)[0]
        calls = [("predict", lambda: model.predict(xp, batch_size=pbs, verbose=0))]
        if pbs == 1 and hasattr(model, "predict_on_batch"):
            # Keras's predict() builds a data pipeline per call; a latency-minded user calls the model
            calls.append(("call", lambda: model(xp, training=False)))
        emit_predict(name, pbs, len(xp), calls, args, nthreads)


def run_torch(name, args, nthreads):
    import torch
    from torch import nn
    torch.set_num_threads(nthreads)
    torch.manual_seed(0)
    bs, labels, pbs = MODELS[name]
    xn, yn = data(args.n, False)
    x, y = torch.from_numpy(xn).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(yn)
    if name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10))
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    else:
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cl = name == "cnn" and args.channels_last
    if cl:
        model = model.to(memory_format=torch.channels_last)
    crit = nn.CrossEntropyLoss()  # on logits = softmax + (sparse) categorical cross-entropy

    prep = (lambda xb: xb.contiguous(memory_format=torch.channels_last)) if cl else None
    times, loss = timed_torch_epochs(torch, model, opt, crit, x, y, bs, args.epochs, prep)
    emit_train(name + ("+channels_last" if cl else ""), bs, args.n, times, loss, nthreads)
    if pbs is not None:
        model.eval()
        xp = x[:pbs] if pbs == 1 else torch.from_numpy(data(args.npredict, False, seed=1)[0]).permute(0, 3, 1, 2)
        xp = xp.contiguous(memory_format=torch.channels_last) if cl else xp.contiguous()

        def predict():
            with torch.inference_mode():
                if len(xp) == pbs:
                    return model(xp).numpy()
                return torch.cat([model(xp[i:i + pbs]) for i in range(0, len(xp), pbs)]).numpy()

        emit_predict(name, pbs, len(xp), [("predict", predict)], args, nthreads)


def timed_torch_epochs(torch, model, opt, crit, x, y, bs, epochs, prep=None):
    """One warm-up epoch plus ``epochs`` timed ones of shuffled minibatch training (``prep`` applied to each
    input batch): (the timed epochs' seconds, the last epoch's mean loss)."""
    n = len(x)

    def epoch():
        model.train()
        perm = torch.randperm(n)
        total = torch.zeros(())
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if prep is not None:
                xb = prep(xb)
            opt.zero_grad(set_to_none=True)
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        return float(total) / n

    times, loss = [], None
    for e in range(1 + epochs):
        t0 = time.perf_counter()
        loss = epoch()
        if e:
            times.append(time.perf_counter() - t0)
    return times, loss


def emit_train(name, bs, n, times, loss, nthreads):
    emit(kind="train", model=name, batch=bs, n=n, threads=nthreads, epoch_s=times,
         sps=n / statistics.median(times), final_loss=loss)


def emit_predict(name, bs, n, calls, args, nthreads):
    best = None
    for how, fn in calls:
        fn()  # warm-up (tracing, plans, allocator)
        inner = max(1, int(0.02 / max(_once(fn), 1e-7))) if bs == 1 else 1
        ts = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            ts.append((time.perf_counter() - t0) / inner)
        med = statistics.median(ts)
        if best is None or med < best[1]:
            best = (how, med)
    emit(kind="predict", model=name, batch=bs, n=n, threads=nthreads, how=best[0], s=best[1],
         sps=n / best[1], latency_us=best[1] * 1e6 if bs == 1 else None)


def _once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=("fastnn", "torch", "keras"))
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--n", type=int, required=True, help="training samples per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--npredict", type=int, default=10240, help="samples per predict call (batched models)")
    ap.add_argument("--reps", type=int, default=5, help="predict samples")
    ap.add_argument("--channels-last", action="store_true", help="torch CNN in channels_last")
    args = ap.parse_args()
    nthreads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    if args.lib == "torch":
        run_torch(args.model, args, nthreads)
    elif args.lib == "keras":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(nthreads)
        tf.config.threading.set_inter_op_parallelism_threads(nthreads)
        import keras
        run_keras_api(keras, args.model, args, nthreads)
    else:
        import fastnn
        fastnn.set_num_threads(nthreads)
        run_keras_api(fastnn, args.model, args, nthreads)
    emit(kind="rss", rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
