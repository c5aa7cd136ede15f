"""Command line: python -m fastnn.bench GROUP [--quick] [--threads N] [--json FILE] [--plot FILE.png]
(see fastnn/bench/__init__.py)."""
import argparse
import importlib
import os
import sys

from fastnn.bench import GROUPS, _report, conv


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m fastnn.bench", description="fastnn kernel benchmark tables")
    ap.add_argument("group", choices=sorted(GROUPS) + ["all"])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller cases and shorter samples")
    ap.add_argument("--threads", type=int, nargs="+", action="extend",
                    help="thread counts (`--threads 1 2` or repeated; default: 1 and 2, train: 2, "
                         "overhead, pipeline, models: 1)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time by thread CPU time (for busy machines; single-threaded runs only)")
    ap.add_argument("--libs", help="comma-separated subset of the libraries to measure")
    ap.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    ap.add_argument("--plot", metavar="FILE.png", help="GEMM GFLOP/s and end-to-end speed-ups (needs matplotlib)")
    ap.add_argument("--profile", action="store_true", help="train: per-layer profile of a fastnn training step")
    ap.add_argument("--layers", help="conv: comma-separated subset of: " + ", ".join(conv.LAYERS))
    ap.add_argument("--cases", help=argparse.SUPPRESS)  # models: the workers' subset of its cases
    ap.add_argument("--wheel", action="store_true", help="import: also build the wheel and report its size")
    ap.add_argument("--bandwidth", type=float, help="distributed: link bandwidth in GB/s for the projection")
    ap.add_argument("--latency", type=float, help="distributed: link latency in microseconds for the projection")
    ap.add_argument("--worker", metavar="LIB", help=argparse.SUPPRESS)  # internal: one subprocess
    return ap.parse_args(argv)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.clock == "cpu" and any(t != 1 for t in args.threads or (1, 2)):
        sys.exit("--clock cpu measures single-threaded runs only: add --threads 1")
    if os.environ.get("FASTNN_BENCH_SMOKE"):  # tests: tiny cases (inherited by the worker subprocesses)
        _report.smoke_sizes()
    if args.worker:
        importlib.import_module(GROUPS[args.group]).worker(args)
        return
    sys.exit(_report.run(args))


if __name__ == "__main__":
    main()
