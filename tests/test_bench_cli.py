"""Smoke test of `python -m fastnn.bench`: tiny cases, fastnn only (no torch, no Keras), a few seconds."""
import json
import os
import subprocess
import sys

import numpy as np

import fastnn

# NOTE: subprocesses run outside the checkout, so they import the same fastnn as this test (the
# installed package in CI, whose source tree has no compiled modules to shadow it with).
CWD = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def _bench(*argv, tmp_path=None):
    env = dict(os.environ, FASTNN_BENCH_SMOKE="1")
    p = subprocess.run([sys.executable, "-m", "fastnn.bench", *argv], env=env, capture_output=True, text=True,
                       timeout=120, cwd=CWD)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p.stdout


def test_gemm_quick_table_fastnn_only(tmp_path):
    out_json = tmp_path / "gemm.json"
    out = _bench("gemm", "--quick", "--threads", "1", "--libs", "fastnn", "--clock", "cpu", "--json", str(out_json))
    assert "SIMD path" in out and "commit" in out
    assert "| case" in out and "square 32" in out and "fastnn GF/s" in out
    rows = json.loads(out_json.read_text())["groups"]["gemm"]
    assert rows and all(r["lib"] == "fastnn" and r["gflops"] > 0 for r in rows)


def test_train_worker_and_profile_tiny():
    """One fastnn end-to-end worker on a tiny epoch reports samples/s, loss and RSS."""
    worker = os.path.join(os.path.dirname(os.path.abspath(fastnn.__file__)), "bench", "_train_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, worker, "fastnn", "mlp32", "--n", "128", "--epochs", "1", "--reps", "1"],
                       env=env, capture_output=True, text=True, timeout=120, cwd=CWD)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    kinds = {r["kind"]: r for r in rows}
    assert kinds["train"]["sps"] > 0 and np.isfinite(kinds["train"]["final_loss"])
    assert kinds["predict"]["batch"] == 1 and kinds["predict"]["latency_us"] > 0
    assert kinds["rss"]["rss_mb"] > 0


def test_train_table_from_measurements():
    """The train tables render from measured rows (no subprocess), targets judged against the best peer."""
    from fastnn.bench import train
    acc = {lib: {"epochs": {m: [1.0] for m in train.MODELS}, "loss": {m: 2.3 for m in train.MODELS},
                 "rss": {m: 100.0 + i for m in train.MODELS}, "how": {},
                 "predict": {"cnn": [{"batch": 1024, "s": 1.0, "sps": 1000.0 * (2 - i)}],
                             "mlp32": [{"batch": 1, "s": 1e-4 * (1 + i), "sps": 1.0}]}}
           for i, lib in enumerate(("fastnn", "torch"))}
    res = {"libs": ["fastnn", "torch"], 2: acc}
    text = train.tables(res, 2, quick=True)
    assert "CNN predict, batch 1024" in text and "2.00x" in text and "MLP predict, batch 1 (latency)" in text
    rows = train.summarize(res, 2, quick=True)
    assert rows[1]["met"] and not rows[0]["met"]


def test_every_group_lives_in_the_package():
    """No group needs a source checkout's benchmarks/: each is a module of fastnn.bench with a main."""
    import importlib

    from fastnn.bench import ALL, GROUPS
    assert set(ALL) <= set(GROUPS) and {"conv", "elementwise", "overhead", "pipeline", "models"} <= set(GROUPS)
    assert all(callable(importlib.import_module(m).main) for m in GROUPS.values())


def test_moved_group_tables_from_measurements(capsys):
    """conv, elementwise, overhead and models render their tables from worker rows (no subprocess)."""
    from fastnn.bench import conv, elementwise, models, overhead
    rows = [dict(lib=lib, threads=1, layer="conv1", op="fwd", fmt=fmt, flop=2e9, ms=ms, ms_min=ms, noisy=False)
            for lib, fmt, ms in (("fastnn", "NHWC", 1.0), ("torch", "NCHW", 3.0), ("torch", "channels_last", 1.5))]
    text = conv.table(rows)
    assert "| conv1 |" in text and "channels_last" in text and "1.50x" in text
    rows = [dict(op="copy", lib="numpy", threads=1, gbs=10.0, noisy=False)]
    rows += [dict(op=op, lib="fastnn", threads=1, gbs=20.0, noisy=True) for op in elementwise.OPS]
    text = elementwise.table(rows, [1])
    assert "copy (numpy, 1 thread)" in text and "20.0*" in text and "2.00" in text
    rows = {("predict b1", "fastnn"): {"median": 1e-5}, ("predict b1", "torch"): {"median": 2e-5}}
    assert "10 us" in models.table(rows, ["predict b1"]) and "2.00x" in models.table(rows, ["predict b1"])
    overhead.print_table([dict(mode="fwd+bwd", op="add", us={"fastnn": 2.0, "torch": 4.0})], 1)
    assert "0.50" in capsys.readouterr().out
