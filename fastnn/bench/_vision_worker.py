"""One MobileNetV2 training/inference measurement in a fresh process: ``python _vision_worker.py LIB MODEL``.

Run by path like _train_worker.py (the Keras worker runs under an interpreter without fastnn). MODEL:
``mnv2`` = MobileNetV2(alpha=0.35, input (96, 96, 3), 10 classes, weights=None), Adam, sparse categorical
cross-entropy, trained at batch 32, predicted at batch 64. fastnn and Keras run the identical
``applications.MobileNetV2`` call; torch runs the same architecture written in torch.nn (NCHW, its
symmetric padding on stride-2 depthwise layers). Prints RESULT rows as _train_worker does.
"""
import argparse
import os
import resource

from _train_worker import emit, emit_predict, emit_train, timed_fit, timed_torch_epochs

import numpy as np

TRAIN_BATCH, PREDICT_BATCH, ALPHA, SIZE, CLASSES = 32, 64, 0.35, 96, 10


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZE, SIZE, 3), dtype=np.float32), rng.integers(0, CLASSES, n)


def run_keras_api(keras, applications, args, nthreads):
    x, y = data(args.n)
    keras.utils.set_random_seed(0)
    model = applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=ALPHA, classes=CLASSES, weights=None)
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    times, loss = timed_fit(keras, model, x, y, TRAIN_BATCH, args.epochs)
    emit_train("mnv2", TRAIN_BATCH, args.n, times, loss, nthreads)
    xp = data(args.npredict, seed=1)[0]
    emit_predict("mnv2", PREDICT_BATCH, len(xp),
                 [("predict", lambda: model.predict(xp, batch_size=PREDICT_BATCH, verbose=0))], args, nthreads)


def torch_mobilenet_v2(nn):
    def divisible(v, d=8):
        new = max(d, int(v + d / 2) // d * d)
        return new + d if new < 0.9 * v else new

    def cbr(cin, cout, k=1, s=1, groups=1, act=True):
        mods = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
        return mods + [nn.ReLU6()] if act else mods

    class Block(nn.Module):
        def __init__(self, cin, cout, stride, expansion):
            super().__init__()
            mods = cbr(cin, cin * expansion) if expansion != 1 else []
            mid = cin * expansion
            mods += cbr(mid, mid, 3, stride, groups=mid) + cbr(mid, cout, act=False)
            self.body, self.residual = nn.Sequential(*mods), cin == cout and stride == 1

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    blocks = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
              (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
              (320, 1, 6)]
    cin = divisible(32 * ALPHA)
    mods = cbr(3, cin, 3, 2)
    for filters, stride, expansion in blocks:
        cout = divisible(int(filters * ALPHA))
        mods.append(Block(cin, cout, stride, expansion))
        cin = cout
    mods += cbr(cin, 1280) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, CLASSES)]
    return nn.Sequential(*mods)


def run_torch(args, nthreads):
    import torch
    from torch import nn
    torch.set_num_threads(nthreads)
    torch.manual_seed(0)
    xn, yn = data(args.n)
    x, y = torch.from_numpy(xn).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(yn)
    model = torch_mobilenet_v2(nn)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()

    times, loss = timed_torch_epochs(torch, model, opt, crit, x, y, TRAIN_BATCH, args.epochs)
    emit_train("mnv2", TRAIN_BATCH, args.n, times, loss, nthreads)
    model.eval()
    xp = torch.from_numpy(data(args.npredict, seed=1)[0]).permute(0, 3, 1, 2).contiguous()

    def predict():
        with torch.inference_mode():
            return torch.cat([model(xp[i:i + PREDICT_BATCH]) for i in range(0, len(xp), PREDICT_BATCH)]).numpy()

    emit_predict("mnv2", PREDICT_BATCH, len(xp), [("predict", predict)], args, nthreads)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=("fastnn", "torch", "keras"))
    ap.add_argument("model", choices=("mnv2",))
    ap.add_argument("--n", type=int, required=True, help="training samples per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--npredict", type=int, default=512, help="samples per predict call")
    ap.add_argument("--reps", type=int, default=3, help="predict samples")
    args = ap.parse_args()
    nthreads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    if args.lib == "torch":
        run_torch(args, nthreads)
    elif args.lib == "keras":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(nthreads)
        tf.config.threading.set_inter_op_parallelism_threads(nthreads)
        import keras
        run_keras_api(keras, keras.applications, args, nthreads)
    else:
        import fastnn
        from fastnn import applications
        fastnn.set_num_threads(nthreads)
        run_keras_api(fastnn, applications, args, nthreads)
    emit(kind="rss", rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
