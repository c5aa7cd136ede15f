"""Elementwise kernels under pytest-benchmark (fastnn only); the cases live in fastnn/bench/elementwise.py.

    python benchmarks/bench_elementwise.py [--quick] [--threads N ...] [--clock cpu]
                                          (= fastnn-bench elementwise ...: fastnn vs numpy and torch)
    pytest benchmarks/bench_elementwise.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the in-tree build
from fastnn.bench import elementwise as E  # noqa: E402


def _bench(benchmark, op):
    benchmark(dict(E.cases("fastnn"))[op])


# one function per kernel (not parametrized): the names under which earlier runs were saved for --benchmark-compare
def test_relu(benchmark):
    _bench(benchmark, "relu")


def test_sigmoid(benchmark):
    _bench(benchmark, "sigmoid")


def test_tanh(benchmark):
    _bench(benchmark, "tanh")


def test_gelu(benchmark):
    _bench(benchmark, "gelu")


def test_softmax(benchmark):
    _bench(benchmark, "softmax")


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["elementwise", *sys.argv[1:]])
