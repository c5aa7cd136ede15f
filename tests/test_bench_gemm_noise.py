"""fastnn-bench gemm never prints a ratio from a disturbed measurement as a result: such rows show
"noisy" in the ratio columns, and a measurement whose samples spread widely is marked disturbed."""
import itertools

from fastnn.bench import _harness as H
from fastnn.bench import gemm


def _row(gflops, noisy):
    return {"gflops": gflops, "noisy": noisy, "mnk": (128, 128, 128)}


def test_ratio_columns_show_noisy_instead_of_a_number():
    key = ("square 128", "NN")
    res = {("fastnn", 1): {key: _row(50.0, False), ("square 512", "NN"): _row(60.0, True)},
           ("numpy", 1): {key: _row(25.0, False), ("square 512", "NN"): _row(30.0, False)}}
    text = gemm.table(res, 1, quick=True)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert lines["square 128"].rstrip(" |").endswith("2.00x")
    assert "60.0*" in lines["square 512"] and lines["square 512"].rstrip(" |").endswith("noisy")
    assert "2.00x" not in lines["square 512"]
    assert gemm.withheld(res, 1) == (1, 2)
    assert gemm.ratio(None, _row(1.0, False)) == "-"


def test_samples_that_spread_widely_are_marked_noisy():
    work = itertools.cycle([20000, 200000])  # every other sample costs 10x: a spread no median survives

    def uneven():
        sum(range(next(work)))

    t = H.timeit(uneven, reps=6, min_sample_s=0.0, warmup=0, cpu_clock=True)
    assert t["spread"] > H.MAX_SPREAD and t["noisy"]
