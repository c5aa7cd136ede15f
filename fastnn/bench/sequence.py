"""Sequence-model training: Embedding(10000, 128) -> LSTM/GRU(128) -> Dense(1) on sequences of 100 tokens,
batch 64, Adam: fastnn vs PyTorch vs Keras 3 (TensorFlow). Each (library, cell) runs in its own subprocess
(``_sequence_worker.py``) with its thread pools sized by the environment; samples/s is the median over the
timed epochs after one warm-up epoch. The table also gives the fraction of the machine's FP32 peak that
fastnn's samples/s amounts to (FLOPs of the recurrent layer's forward and backward per sample).
"""
import os

from fastnn.bench import _harness as H
from fastnn.bench.train import available_libs
from fastnn.bench.train import run_one as train_run_one

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sequence_worker.py")
CELLS = (("lstm", 4), ("gru", 3))  # (cell, gates)
TARGET = 2.0
T, C, U = 100, 128, 128
# FP32 peak of the project's 2-core Zen 4 VM (2 cores x 2 FMA x 16 lanes x 2 x ~1.83 GHz sustained)
PEAK_GFLOPS = 234.0


def flops_per_sample(gates):
    """Forward: the input projection and the recurrent product of every step; backward about twice that."""
    forward = T * 2 * (C + U) * gates * U
    return 3 * forward


def run_one(lib, cell, nthreads, extra):
    """One worker subprocess (train.run_one with this group's worker script); returns its RESULT rows."""
    return train_run_one(lib, cell, nthreads, extra, worker=WORKER)[0]


def main(args):
    threads = args.threads or [2]
    extra = ["--n", "640", "--epochs", "1"] if args.quick else ["--n", "3200", "--epochs", "2"]
    print("Sequence training: Embedding(10000,128) -> LSTM/GRU(128) -> Dense(1), T=100, batch 64, Adam "
          "(samples/s: median over timed epochs)")
    print(H.machine_line(), flush=True)
    libs = available_libs(args)
    report = {"threads": threads, "libs": libs, "rows": {}}
    for t in threads:
        rows, summary = [], []
        for cell, gates in CELLS:
            vals = {}
            for lib in libs:
                tr = next(r for r in run_one(lib, cell, t, extra) if r["kind"] == "train")
                vals[lib] = tr["sps"]
            f = vals.get("fastnn")
            peers = {lib: v for lib, v in vals.items() if lib != "fastnn"}
            best = f / max(peers.values()) if f and peers else None
            frac = f * flops_per_sample(gates) / (PEAK_GFLOPS * 1e9 * t / 2) if f else None
            rows.append([f"{cell.upper()} train, batch 64", *[f"{vals[lib]:,.0f}" for lib in libs],
                         *[f"{f / v:.2f}x" if f else "-" for v in peers.values()],
                         f"{best:.2f}x" if best else "-", f">= {TARGET:.1f}x",
                         "-" if best is None else ("yes" if best >= TARGET else "NO"),
                         f"{frac:.0%}" if frac else "-"])
            summary.append(dict(cell=cell, values=vals, vs_best=best, target=TARGET, fraction_of_peak=frac))
        peers = [lib for lib in libs if lib != "fastnn"]
        head = ["case"] + [f"{lib} samples/s" for lib in libs] + [f"fastnn vs {p}" for p in peers] + \
               ["vs best peer", "target", "met", "fastnn % of peak"]
        print(f"\n### threads = {t}\n")
        print(H.markdown_table(head, rows))
        report["rows"][t] = summary
    return report


def worker(args):
    raise SystemExit("the sequence group runs its workers as fastnn/bench/_sequence_worker.py")
