"""Keras-API end to end, fastnn vs PyTorch: the cases live in fastnn/bench/models.py (no pytest cases).

    python benchmarks/bench_models.py [--quick] [--threads N] [--clock wall|cpu]   (= fastnn-bench models ...)
"""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the in-tree build
    from fastnn.bench.__main__ import main
    main(["models", *sys.argv[1:]])
