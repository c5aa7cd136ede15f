"""SGEMM benchmark: fastnn vs numpy vs torch, see fastnn/bench/gemm.py (owned by the GEMM group).

    python benchmarks/bench_gemm.py [--quick] [--threads N]   # = python -m fastnn.bench gemm ...
    pytest benchmarks/bench_gemm.py                           # pytest-benchmark, fastnn only, quick cases
"""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the in-tree build (tools/dev_build.sh) when not installed

from fastnn.bench import gemm  # noqa: E402

CASES = list(gemm.cases(quick=True))


@pytest.mark.parametrize("case,form,mkn", CASES, ids=[f"{c}-{f}" for c, f, _ in CASES])
def test_gemm(benchmark, case, form, mkn):
    import fastnn
    x, y = gemm.operands(form, *mkn, np.random.default_rng(0))
    out = benchmark(fastnn.kernels.gemm, x, y)
    assert out.shape == (x.shape[0], y.shape[1])


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["gemm", *sys.argv[1:]])
