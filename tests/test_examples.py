"""Each example script and the demo run end to end on a tiny slice of the bundled digits set."""
import os
import subprocess
import sys

import pytest

import fastnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["mlp_sparse.py", "mlp_input_dim.py", "small_cnn.py", "mnist_cnn.py", "tf_keras_mlp.py"]


def _run(args):
    # NOTE: cwd outside the checkout so the installed fastnn (with its compiled modules) is imported
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cwd = os.path.dirname(os.path.dirname(fastnn.__file__))
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script):
    r = _run([os.path.join(ROOT, "examples", script), "--dataset", "digits", "--limit", "200", "--epochs", "1"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "ccuracy" in r.stdout + r.stderr


def test_demo_learns_digits():
    r = _run(["-m", "fastnn.demo", "--epochs", "8", "--verbose", "2"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("test accuracy:")][0]
    assert float(line.split()[2]) > 0.9, r.stdout
