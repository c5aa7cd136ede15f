"""Each example script and the demo run end to end on a tiny slice of the bundled digits set."""
import os
import subprocess
import sys

import pytest

import fastnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["mlp_sparse.py", "mlp_input_dim.py", "small_cnn.py", "mnist_cnn.py", "tf_keras_mlp.py",
            "functional_multi_input.py", "custom_training_loop.py"]


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


def test_console_scripts_of_an_installed_package():
    """pip installs `fastnn-demo` and `fastnn-bench` next to the interpreter (the README's commands)."""
    bindir = os.path.dirname(sys.executable)
    demo, bench = os.path.join(bindir, "fastnn-demo"), os.path.join(bindir, "fastnn-bench")
    if not os.path.exists(demo):
        pytest.skip("fastnn is not pip-installed in this interpreter (in-tree development build)")
    r = subprocess.run([demo, "--epochs", "1", "--verbose", "0"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT)  # cwd: the checkout must not shadow it
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "test accuracy:" in r.stdout
    r = subprocess.run([bench, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and "gemm" in r.stdout


# ---- text examples (issue #14)


def test_imdb_lstm_example_runs_offline_on_generated_reviews():
    r = _run([os.path.join(ROOT, "examples", "imdb_lstm.py"), "--dataset", "generated", "--limit", "300",
              "--epochs", "3", "--maxlen", "40", "--units", "16"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    acc = float([ln for ln in r.stdout.splitlines() if ln.startswith("Test accuracy:")][0].split()[-1])
    assert acc > 0.6, r.stdout[-2000:]  # the generated set is learnable: chance is 0.5


def test_char_text_generation_example_runs():
    r = _run([os.path.join(ROOT, "examples", "text_generation_char.py"), "--limit", "1500", "--epochs", "1",
              "--units", "16", "--generate", "20"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    generated = [ln for ln in r.stdout.splitlines() if ln.startswith("Generated (temperature")]
    assert len(generated) == 3 and "ccuracy" in r.stdout

def test_cifar10_augment_example_runs_offline():
    """examples/cifar10_augment.py on a tiny slice of its generated CIFAR-shaped data (no download)."""
    r = _run([os.path.join(ROOT, "examples", "cifar10_augment.py"), "--dataset", "synthetic", "--limit", "128",
              "--epochs", "1", "--batch-size", "32"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Test accuracy" in r.stdout
