"""Conv2D / max-pooling table: runs benchmarks/bench_conv2d.py (see fastnn.bench._scripts)."""
from fastnn.bench._scripts import run


def main(args):
    return run("bench_conv2d.py", args, threads_flag_repeated=True)
