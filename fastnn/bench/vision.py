"""MobileNetV2 end to end: fastnn vs PyTorch vs Keras 3 (TensorFlow), ``python -m fastnn.bench vision``.

MobileNetV2(alpha=0.35, 96x96x3, 10 classes), synthetic images: training samples/s at batch 32 (Adam, sparse
categorical cross-entropy) and predict samples/s at batch 64. Each library runs in its own subprocess
(_vision_worker.py, by path, like the train group); targets: predict >= 1.5x and training >= 1.3x the best peer.
"""
import os
import statistics

from fastnn.bench import _harness as H
from fastnn.bench import train

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_vision_worker.py")
# (kind, batch, label, target speed-up over the best peer)
ROWS = (("train", 32, "MobileNetV2 0.35 96x96 train, batch 32", 1.3),
        ("predict", 64, "MobileNetV2 0.35 96x96 predict, batch 64", 1.5))


def sizes(quick):
    return ["--n", "128", "--epochs", "1", "--npredict", "128", "--reps", "2"] if quick else \
        ["--n", "1024", "--epochs", "3", "--npredict", "1024", "--reps", "5"]


def measure(args, nthreads):
    """{lib: {"train": samples/s, "predict": samples/s, "loss": final loss}}, libraries interleaved by round."""
    libs = train.available_libs(args)
    out = {lib: {"train": [], "predict": [], "loss": None} for lib in libs}
    n = int(sizes(args.quick)[1])
    for rnd in range(1 if args.quick else 2):
        for lib in (libs if rnd % 2 == 0 else libs[::-1]):
            rows, _ = train.run_one(lib, "mnv2", nthreads, sizes(args.quick), worker=WORKER)
            tr = next(r for r in rows if r["kind"] == "train")
            out[lib]["train"] += [n / t for t in tr["epoch_s"]]
            out[lib]["loss"] = tr["final_loss"]
            out[lib]["predict"] += [r["sps"] for r in rows if r["kind"] == "predict"]
    return out


def main(args):
    nthreads = (args.threads or [2])[0]
    print("MobileNetV2 (alpha 0.35, 96x96x3, 10 classes): samples/s, median over epochs / predict calls")
    print(H.machine_line(), flush=True)
    res = measure(args, nthreads)
    libs = list(res)
    peers = [l for l in libs if l != "fastnn"]
    rows, report = [], []
    for kind, batch, label, target in ROWS:
        vals = {l: statistics.median(res[l][kind]) if res[l][kind] else None for l in libs}
        f = vals.get("fastnn")
        speed = {p: f / vals[p] for p in peers if f and vals[p]}
        best = min(speed.values()) if speed else None
        rows.append([label] + [f"{vals[l]:,.1f}" if vals[l] else "-" for l in libs]
                    + [f"{speed[p]:.2f}x" if p in speed else "-" for p in peers]
                    + [f"{best:.2f}x" if best else "-", f">= {target:.1f}x",
                       "-" if best is None else ("yes" if best >= target else "NO")])
        report.append(dict(label=label, kind=kind, batch=batch, values=vals, speedup=speed, vs_best=best,
                           target=target))
    head = ["case"] + libs + [f"fastnn vs {p}" for p in peers] + ["vs best peer", "target", "met"]
    print(f"\n### threads = {nthreads}\n")
    print(H.markdown_table(head, rows))
    print("final training loss: " + ", ".join(f"{l} {res[l]['loss']:.4f}" for l in libs))
    return {"threads": nthreads, "libs": libs, "rows": report}


def worker(args):  # every library runs via _vision_worker.py, never via --worker
    raise SystemExit("the vision group runs its workers as fastnn/bench/_vision_worker.py")
