"""One sequence-model training measurement in a fresh process: ``python _sequence_worker.py LIB CELL``.

Run by path (like _train_worker.py) so the Keras worker needs no fastnn. LIB is fastnn, torch or keras; CELL
is lstm or gru. The model: Embedding(10000, 128) -> LSTM/GRU(128) -> Dense(1, sigmoid) on sequences of 100
random token ids, binary cross-entropy, Adam, batch 64 (torch: nn.Embedding, nn.LSTM/nn.GRU(batch_first),
nn.Linear, BCEWithLogitsLoss). Prints ``RESULT {json}`` train rows (samples/s per timed epoch).
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np

VOCAB, T, EMBED, UNITS, BATCH = 10000, 100, 128, 128, 64


def emit(**row):
    print("RESULT " + json.dumps(row), flush=True)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, VOCAB, (n, T)).astype(np.int32), rng.integers(0, 2, n).astype(np.float32)


def run_keras_api(keras, cell, args):
    x, y = data(args.n)
    layers = keras.layers
    rnn = layers.LSTM(UNITS) if cell == "lstm" else layers.GRU(UNITS)
    keras.utils.set_random_seed(0)
    try:
        inputs = keras.Input((T,), dtype="int32")
    except ValueError:  # a fastnn without integer inputs yet: its Embedding takes the ids as floats
        inputs = keras.Input((T,))
    model = keras.Sequential([inputs, layers.Embedding(VOCAB, EMBED), rnn, layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    times, loss = [], None
    for e in range(1 + args.epochs):  # one fit call per epoch, timed around it (the first is the warm-up)
        t0 = time.perf_counter()
        loss = float(model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0).history["loss"][-1])
        if e:
            times.append(time.perf_counter() - t0)
    return times, loss


def run_torch(cell, args, nthreads):
    import torch
    from torch import nn
    torch.set_num_threads(nthreads)
    torch.manual_seed(0)
    xn, yn = data(args.n)
    x, y = torch.from_numpy(xn.astype(np.int64)), torch.from_numpy(yn)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(EMBED, UNITS, batch_first=True)
            self.out = nn.Linear(UNITS, 1)

        def forward(self, ids):
            seq, _ = self.rnn(self.embed(ids))
            return self.out(seq[:, -1]).squeeze(1)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.BCEWithLogitsLoss()
    times, loss = [], None
    for e in range(1 + args.epochs):
        t0 = time.perf_counter()
        perm, total = torch.randperm(args.n), 0.0
        for i in range(0, args.n, BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            batch_loss = crit(model(x[idx]), y[idx])
            batch_loss.backward()
            opt.step()
            total += float(batch_loss) * len(idx)
        loss = total / args.n
        if e:
            times.append(time.perf_counter() - t0)
    return times, loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=("fastnn", "torch", "keras"))
    ap.add_argument("cell", choices=("lstm", "gru"))
    ap.add_argument("--n", type=int, required=True, help="training samples per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    args = ap.parse_args()
    nthreads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    if args.lib == "torch":
        times, loss = run_torch(args.cell, args, nthreads)
    elif args.lib == "keras":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(nthreads)
        tf.config.threading.set_inter_op_parallelism_threads(nthreads)
        import keras
        times, loss = run_keras_api(keras, args.cell, args)
    else:
        import fastnn
        fastnn.set_num_threads(nthreads)
        times, loss = run_keras_api(fastnn, args.cell, args)
    emit(kind="train", model=args.cell, batch=BATCH, n=args.n, threads=nthreads, epoch_s=times,
         sps=args.n / statistics.median(times), final_loss=loss)
    emit(kind="rss", rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
