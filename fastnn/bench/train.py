"""End-to-end training and inference: fastnn vs PyTorch vs Keras 3 (TensorFlow), synthetic MNIST shapes.

Models (fastnn and Keras run the identical Keras code, ``_train_worker.keras_model``):
  cnn     Conv2D(32,3,relu)-Conv2D(64,3,relu)-MaxPool(2)-Dropout(.25)-Flatten-Dense(128,relu)-Dropout(.5)-
          Dense(10,softmax), categorical cross-entropy, Adadelta(learning_rate=1.0), batch 128;
          predict at batch 1024
  mlp32   Flatten-Dense(128,relu)-Dense(10,softmax), sparse categorical cross-entropy, Adam, batch 32;
          predict at batch 1 (latency)
  mlp256  the same MLP at batch 256
  mlp32f  the MLP at batch 32 written with the Functional API (torch: the same nn.Sequential as mlp32)
PyTorch runs the same layers as an idiomatic nn.Sequential (CrossEntropyLoss on logits; the CNN also in
channels_last, the faster of the two is kept). Every (library, model) runs in its own subprocess with
its thread pools sized by the environment; one warm-up epoch is discarded, samples/s is the median over
the timed epochs; peak RSS is the worker's ru_maxrss. Rounds alternate the library order (interleaved)
and their epochs are pooled. Keras runs under a separate interpreter: $FASTNN_BENCH_KERAS_PYTHON, else
/work/venv-tf/bin/python or ./.venv-tf/bin/python when present.
"""
import json
import os
import statistics
import subprocess
import sys
import time

from fastnn.bench import _harness as H

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_train_worker.py")
LIBS = ("fastnn", "torch", "keras")
# row key: (model, kind, batch, label, target speed-up over the best peer)
ROWS = (("cnn", "train", 128, "CNN train, batch 128", 1.2),
        ("cnn", "predict", 1024, "CNN predict, batch 1024", 1.2),
        ("mlp32", "train", 32, "MLP train, batch 32", 2.0),
        ("mlp32f", "train", 32, "Functional MLP train, batch 32", 2.0),
        ("mlp256", "train", 256, "MLP train, batch 256", 1.5),
        ("mlp32", "predict", 1, "MLP predict, batch 1 (latency)", 2.0))
MODELS = ("cnn", "mlp32", "mlp256", "mlp32f")


def sizes(quick):
    """Per model: worker arguments (samples per epoch, timed epochs, predict samples, predict reps)."""
    if quick:
        return {"cnn": ["--n", "1280", "--epochs", "2", "--npredict", "2048", "--reps", "3"],
                "mlp32": ["--n", "6400", "--epochs", "2", "--reps", "5"],
                "mlp256": ["--n", "12800", "--epochs", "2"],
                "mlp32f": ["--n", "6400", "--epochs", "2"]}
    return {"cnn": ["--n", "12800", "--epochs", "3", "--npredict", "4096", "--reps", "5"],
            "mlp32": ["--n", "60000", "--epochs", "3", "--reps", "7"],
            "mlp256": ["--n", "60000", "--epochs", "3"],
            "mlp32f": ["--n", "60000", "--epochs", "3"]}


def keras_python():
    for p in (os.environ.get("FASTNN_BENCH_KERAS_PYTHON"), "/work/venv-tf/bin/python", ".venv-tf/bin/python"):
        if p and os.path.exists(p):
            return p
    return None


def available_libs(args):
    wanted = args.libs.split(",") if args.libs else LIBS
    out = []
    for lib in wanted:
        if lib == "torch" and not H.have("torch"):
            print("  (torch not installed: skipped)")
        elif lib == "keras" and keras_python() is None:
            print("  (no Keras interpreter: set FASTNN_BENCH_KERAS_PYTHON to a python with tensorflow-cpu + keras)")
        else:
            out.append(lib)
    return out


def run_one(lib, model, nthreads, extra, worker=WORKER):
    """Run one worker subprocess (``worker``: the script, by path); returns its RESULT rows (+ the background
    load during the run)."""
    env = H.peer_env(nthreads)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "") if lib == "fastnn" else env.get("PYTHONPATH", "")
    py = keras_python() if lib == "keras" else sys.executable
    cmd = [py, worker, lib, model, *extra]
    b0, c0, w0 = H._busy_seconds(), os.times(), time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    c1 = os.times()
    own = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    bg = max(0.0, (H._busy_seconds() - b0 - own) / max(wall, 1e-9))
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        raise RuntimeError(f"benchmark worker failed: {' '.join(cmd)}")
    rows = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    print(f"  {lib:6s} {model:6s} threads={nthreads}: {wall:5.1f} s, other processes used {bg:.2f} cores",
          flush=True)
    return rows, bg


def measure(args, threads):
    """{threads: {lib: {"train"|"predict"|"rss"|"loss": {model: value}}}}, rounds interleaved."""
    libs = available_libs(args)
    size = sizes(args.quick)
    rounds = 1 if args.quick else 2
    res = {"libs": libs, "bg": []}
    for t in threads:
        acc = {lib: {"epochs": {}, "predict": {}, "rss": {}, "loss": {}, "how": {}} for lib in libs}
        for rnd in range(rounds):
            order = libs if rnd % 2 == 0 else libs[::-1]
            for model in MODELS:
                for lib in order:
                    variants = [[]]
                    if lib == "torch" and model == "cnn" and not args.quick:
                        variants.append(["--channels-last"])
                    best = None
                    for v in variants:
                        rows, bg = run_one(lib, model, t, size[model] + v)
                        res["bg"].append(bg)
                        tr = next(r for r in rows if r["kind"] == "train")
                        if best is None or tr["sps"] > best[0]["sps"]:
                            best = (tr, rows)
                    tr, rows = best
                    a = acc[lib]
                    a["epochs"].setdefault(model, []).extend(tr["epoch_s"])
                    a["loss"][model] = tr["final_loss"]
                    a["how"][model] = tr["model"]
                    a["rss"][model] = max(a["rss"].get(model, 0), next(r["rss_mb"] for r in rows if r["kind"] == "rss"))
                    for r in rows:
                        if r["kind"] == "predict":
                            a["predict"].setdefault(model, []).append(r)
        res[t] = acc
    return res


def value(acc, model, kind, n_by_model):
    """samples/s (train, batched predict) or seconds per call (batch-1 predict); None if not measured."""
    if kind == "train":
        ep = acc["epochs"].get(model)
        return n_by_model[model] / statistics.median(ep) if ep else None
    rows = acc["predict"].get(model)
    if not rows:
        return None
    return statistics.median(r["s"] for r in rows) if rows[0]["batch"] == 1 else statistics.median(r["sps"] for r in rows)


def summarize(res, t, quick):
    """Per row: values per library and speed-ups (fastnn over each peer, higher is better)."""
    n_by_model = {m: int(a[a.index("--n") + 1]) for m, a in sizes(quick).items()}
    out = []
    for model, kind, batch, label, target in ROWS:
        vals = {lib: value(res[t][lib], model, kind, n_by_model) for lib in res["libs"]}
        latency = kind == "predict" and batch == 1
        f = vals.get("fastnn")
        speed = {}
        for lib, v in vals.items():
            if lib != "fastnn" and v and f:
                speed[lib] = v / f if latency else f / v
        best = min(speed.values()) if speed else None
        out.append(dict(label=label, model=model, kind=kind, batch=batch, latency=latency, values=vals,
                        speedup=speed, vs_best=best, target=target,
                        met=None if best is None else best >= target))
    return out


def fmt_val(v, latency):
    if v is None:
        return "-"
    return f"{v * 1e6:,.0f} µs" if latency else f"{v:,.0f}"


def tables(res, t, quick):
    libs = res["libs"]
    peers = [l for l in libs if l != "fastnn"]
    rows = []
    for s in summarize(res, t, quick):
        r = [s["label"], "µs/call" if s["latency"] else "samples/s"]
        r += [fmt_val(s["values"].get(l), s["latency"]) for l in libs]
        r += [f"{s['speedup'][p]:.2f}x" if p in s["speedup"] else "-" for p in peers]
        r += [f"{s['vs_best']:.2f}x" if s["vs_best"] else "-", f">= {s['target']:.1f}x",
              "-" if s["met"] is None else ("yes" if s["met"] else "NO")]
        rows.append(r)
    head = ["case", "unit"] + libs + [f"fastnn vs {p}" for p in peers] + ["vs best peer", "target", "met"]
    main = H.markdown_table(head, rows)
    rows = []
    for model in MODELS:
        rss = {l: res[t][l]["rss"].get(model) for l in libs}
        r = [model] + [f"{rss[l]:.0f}" if rss[l] else "-" for l in libs]
        r += [f"{res[t][l]['loss'].get(model, float('nan')):.4f}" for l in libs]
        others = [rss[p] for p in peers if rss[p]]
        r.append("-" if not others or not rss.get("fastnn") else ("yes" if rss["fastnn"] < min(others) else "NO"))
        rows.append(r)
    head = ["worker"] + [f"{l} peak RSS MB" for l in libs] + [f"{l} final loss" for l in libs] + ["RSS below peers"]
    return main + "\n\n" + H.markdown_table(head, rows)


def main(args):
    threads = args.threads or [2]
    print("End-to-end training/inference, synthetic MNIST shapes (samples/s: median over timed epochs)")
    print(H.machine_line(), flush=True)
    if args.libs == "none":  # --profile alone
        res = {"libs": [], "bg": []}
    else:
        res = measure(args, threads)
    report = {"threads": threads, "libs": res["libs"], "background_cores": res["bg"], "rows": {}}
    for t in threads if res["libs"] else ():
        print(f"\n### threads = {t}\n")
        print(tables(res, t, args.quick))
        report["rows"][t] = summarize(res, t, args.quick)
    if res["bg"]:
        print(f"\nother processes used {statistics.median(res['bg']):.2f} cores (median over workers) during the run")
    if getattr(args, "profile", False):
        from fastnn.bench import stepprof
        for t in threads:
            stepprof.main(t, args.quick)
    return report


def worker(args):  # every library runs via _train_worker.py, never via --worker
    raise SystemExit("the train group runs its workers as fastnn/bench/_train_worker.py")
