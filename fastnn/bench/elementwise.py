"""Elementwise kernels table: runs benchmarks/bench_elementwise.py (see fastnn.bench._scripts)."""
from fastnn.bench._scripts import run


def main(args):
    return run("bench_elementwise.py", args, threads_flag_repeated=False)
