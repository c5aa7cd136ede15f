"""Batch pipeline cases under pytest-benchmark; the cases live in fastnn/bench/pipeline.py.

    python benchmarks/bench_pipeline.py [--quick] [--threads N]   (= fastnn-bench pipeline ...: the table)
    pytest benchmarks/bench_pipeline.py
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the in-tree build
from fastnn.bench import pipeline as P  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return P.make_data()


@pytest.mark.parametrize("bs", P.BATCHES)
@pytest.mark.parametrize("variant", list(P.VARIANTS))
def test_pipeline_epoch(benchmark, data, bs, variant):
    benchmark(P.time_pass, P.VARIANTS[variant](*data, bs), None, 10**9)


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["pipeline", *sys.argv[1:]])
