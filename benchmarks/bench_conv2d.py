"""Conv2D / max-pooling cases under pytest-benchmark (fastnn only); the cases live in fastnn/bench/conv.py.

    python benchmarks/bench_conv2d.py [--quick] [--threads N] [--clock cpu] [--layers conv1,pool]
                                     (= fastnn-bench conv ...: fastnn vs torch, the markdown table)
    pytest benchmarks/bench_conv2d.py
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the in-tree build
from fastnn.bench import conv as C  # noqa: E402

NAMES = [f"{layer}-{op}" for layer in C.CONVS for op in ("fwd", "fwd+bwd")] + ["pool-fwd", "pool-fwd+bwd"]


@pytest.mark.parametrize("op_name", NAMES)
def test_conv2d_ops(benchmark, op_name):
    ops = {f"{layer}-{op}": fn for layer, op, _, fn in C.fastnn_ops()}
    benchmark(ops[op_name])


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["conv", *sys.argv[1:]])
