"""fastnn._malloc: a training step reuses the previous step's freed activation memory instead of faulting in fresh
pages (glibc's malloc tuned once when the first plan is made); FASTNN_KEEP_FREED_MEMORY=0 leaves malloc alone."""
import os
import platform
import subprocess
import sys

import pytest

import fastnn

SCRIPT = """
import resource
import numpy as np
import fastnn
from fastnn import layers
fastnn.set_num_threads(1)
m = fastnn.Sequential([fastnn.Input((64, 64, 8)), layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(),
                       layers.ReLU(6.0), layers.Conv2D(32, 1), layers.GlobalAveragePooling2D(), layers.Dense(3)])
m.compile("adam", "sparse_categorical_crossentropy")
x, y = np.random.default_rng(0).random((32, 64, 64, 8), dtype=np.float32), np.zeros(32, np.int64)
for _ in range(3):
    m.train_on_batch(x, y)
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    m.train_on_batch(x, y)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 3)
"""


def _faults_per_step(**env):
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        full.pop(key, None)
    full["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(fastnn.__file__)), full.get("PYTHONPATH", "")])
    # cwd: where the fastnn under test lives ("-c" puts the cwd first on sys.path: a checkout's root would shadow
    # the installed package with its uncompiled sources)
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=full,
                       cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))
    assert r.returncode == 0, r.stderr[-3000:]
    return float(r.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_training_steps_reuse_freed_memory():
    """Each step allocates ~40 MB of activations (8 MB arrays): with fastnn's tuning the steps after the first
    fault in (almost) no new pages; without it (opted out), thousands per step."""
    tuned = _faults_per_step()
    assert tuned < 100, tuned
    untuned = _faults_per_step(FASTNN_KEEP_FREED_MEMORY="0")
    assert untuned > 10 * max(tuned, 10), (tuned, untuned)
