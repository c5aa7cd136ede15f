"""End-to-end training / inference benchmark (fastnn vs PyTorch vs Keras 3): see fastnn/bench/train.py.

    python benchmarks/bench_train.py [--quick] [--threads N] [--profile]   # = python -m fastnn.bench train ...
    pytest benchmarks/bench_train.py                                       # pytest-benchmark, fastnn only

The pytest cases time fastnn alone, in-process, on small epochs of the same models (fit for 512/2048
samples, predict at batch 1024 and 1) so that `--benchmark-compare` catches regressions quickly.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the in-tree build (tools/dev_build.sh) when not installed
sys.path.insert(0, os.path.join(ROOT, "fastnn", "bench"))

import _train_worker as W  # noqa: E402

TRAIN_N = {"cnn": 512, "mlp32": 2048, "mlp256": 4096}


@pytest.fixture(scope="module")
def fastnn():
    import fastnn
    fastnn.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    return fastnn


def _model(fastnn, name):
    fastnn.utils.set_random_seed(0)
    return W.keras_model(fastnn, name)


@pytest.mark.parametrize("name", sorted(TRAIN_N))
def test_train_epoch(benchmark, fastnn, name):
    bs, labels, _ = W.MODELS[name]
    x, y = W.data(TRAIN_N[name], labels == "onehot")
    model = _model(fastnn, name)
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0)  # warm-up
    hist = benchmark.pedantic(lambda: model.fit(x, y, batch_size=bs, epochs=1, verbose=0), rounds=3, iterations=1)
    assert hist.history["loss"][-1] > 0


@pytest.mark.parametrize("name,batch", [("cnn", 1024), ("mlp32", 1)])
def test_predict(benchmark, fastnn, name, batch):
    x = W.data(batch, False)[0]
    model = _model(fastnn, name)
    model.predict(x, batch_size=batch, verbose=0)
    out = benchmark(lambda: model.predict(x, batch_size=batch, verbose=0))
    assert out.shape == (batch, 10)


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["train", *sys.argv[1:]])
