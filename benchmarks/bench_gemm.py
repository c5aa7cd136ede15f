"""SGEMM benchmark: fastnn vs numpy (OpenBLAS at its best) and torch, 1 and 2 threads.

Script:  python benchmarks/bench_gemm.py [--quick] [--threads N] [--clock cpu]
         (the same as `python -m fastnn.bench gemm ...`: prints the markdown tables of RESULTS.md)
pytest:  pytest benchmarks/bench_gemm.py   (pytest-benchmark; times fastnn and numpy in-process,
         so numpy runs with this process's environment: unset OPENBLAS_CORETYPE first)
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fastnn.bench import gemm as G  # noqa: E402

CASES = list(G.cases(quick=True))
IDS = [f"{case.replace(' ', '')}-{form}" for case, form, _ in CASES]


@pytest.mark.parametrize("case,form,mkn", CASES, ids=IDS)
@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_gemm(benchmark, lib, case, form, mkn):
    mm, conv = G.matmul_for(lib, nthreads=int(os.environ.get("OMP_NUM_THREADS", "1")))
    x, y = (conv(v) for v in G.operands(form, *mkn, np.random.default_rng(0)))
    benchmark.extra_info["gflop"] = 2e-9 * mkn[0] * mkn[1] * mkn[2]
    benchmark(mm, x, y)


if __name__ == "__main__":
    from fastnn.bench.__main__ import main
    main(["gemm", *sys.argv[1:]])
