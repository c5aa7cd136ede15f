"""Import cost and size: ``python -m fastnn.bench import [--quick] [--wheel]``.

Import cost: median wall time of a whole ``python -c "import X"`` process (one warm-up run for the page
cache, then 10 timed runs; 5 with --quick), for fastnn beside numpy, torch and tensorflow (the latter
under the Keras interpreter, see fastnn.bench.train). ``python -c pass`` is shown as the floor.
Size: the installed package directory (this fastnn, without __pycache__); with --wheel also the wheel
built from the source checkout by ``pip wheel . --no-deps`` and the size of that wheel once installed.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from fastnn.bench import _harness as H
from fastnn.bench.train import keras_python

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(PKG)


def import_time(py, code, reps, env):
    cmd = [py, "-c", code]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def dir_size(path):
    total = 0
    for d, dirs, files in os.walk(path):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files if not os.path.islink(os.path.join(d, f)))
    return total


def wheel_sizes():
    """(wheel file name, wheel bytes, installed bytes) built from the checkout, or None."""
    if not os.path.exists(os.path.join(ROOT, "pyproject.toml")):
        return None
    tmp = tempfile.mkdtemp(prefix="fastnn-wheel-")
    print("  building the wheel (pip wheel . --no-deps; compiles the extension, a few minutes)...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", tmp], check=True)
    whl = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
    target = os.path.join(tmp, "site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", target,
                    whl], check=True)
    return os.path.basename(whl), os.path.getsize(whl), dir_size(os.path.join(target, "fastnn"))


def main(args):
    reps = 5 if args.quick else 10
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cases = [("python", sys.executable, "pass"), ("fastnn", sys.executable, "import fastnn"),
             ("numpy", sys.executable, "import numpy")]
    if H.have("torch"):
        cases.append(("torch", sys.executable, "import torch"))
    kp = keras_python()
    if kp:
        cases.append(("tensorflow", kp, "import tensorflow"))
    print(f"Import cost: median wall time of `python -c ...` over {reps} runs (after 1 warm-up)")
    rows, out = [], {}
    for name, py, code in cases:
        med, best = import_time(py, code, reps, env)
        out[name] = med
        rows.append([name, f"`{code}`", f"{med * 1e3:.0f}", f"{best * 1e3:.0f}"])
        print(f"  {name}: {med * 1e3:.0f} ms", flush=True)
    print()
    print(H.markdown_table(["library", "command", "median ms", "min ms"], rows))
    sizes = {"package_dir_bytes": dir_size(PKG)}
    print(f"\nfastnn package directory ({PKG}, without __pycache__): {sizes['package_dir_bytes'] / 2**20:.1f} MiB")
    if getattr(args, "wheel", False):
        w = wheel_sizes()
        if w:
            sizes.update(wheel=w[0], wheel_bytes=w[1], installed_bytes=w[2])
            print(f"wheel {w[0]}: {w[1] / 2**20:.2f} MiB; installed (pip install --target): {w[2] / 2**20:.2f} MiB")
        else:
            print("--wheel: not a source checkout, no wheel built")
    return {"import_s": out, **sizes}
