"""Autograd overhead cases under pytest-benchmark; the cases live in fastnn/bench/overhead.py.

    python benchmarks/bench_overhead.py [--quick] [--threads N]   (= fastnn-bench overhead ...: the table)
    pytest benchmarks/bench_overhead.py
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the in-tree build
from fastnn.bench import overhead as O  # noqa: E402


@pytest.mark.parametrize("op", list(O.ops("fastnn")))
@pytest.mark.parametrize("lib", ["fastnn", "torch"])
def test_overhead_fwd_bwd(benchmark, lib, op):
    if lib == "torch":
        pytest.importorskip("torch")
    benchmark(O.step_fn(lib, op, True))


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["overhead", *sys.argv[1:]])
