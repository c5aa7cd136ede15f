"""Kernel benchmark tables: ``python -m fastnn.bench GROUP [--quick] [--threads N]``.

Each group is a module of this package (``GROUPS`` maps its name to the module) with
``main(args)`` (prints the table) and ``worker(args)`` (runs inside a subprocess whose thread
environment is fixed, and emits one ``RESULT {json}`` line per measurement). Every library is
measured in its own subprocess, so thread pools never compete and each peer runs at its best
configuration (see ``_harness.peer_env``); overhead and pipeline time all their variants in one
worker instead, sample by sample in turn, so that load from other processes hits them alike.
"""
GROUPS = {"gemm": "fastnn.bench.gemm", "conv": "fastnn.bench.conv", "elementwise": "fastnn.bench.elementwise",
          "train": "fastnn.bench.train", "import": "fastnn.bench.startup", "overhead": "fastnn.bench.overhead",
          "pipeline": "fastnn.bench.pipeline", "models": "fastnn.bench.models",
          "contention": "fastnn.bench.contention"}
GROUPS["augment"] = "fastnn.bench.augment"  # issue #15: augmentation layers' cost in a training step

GROUPS["distributed"] = "fastnn.bench.distributed"  # data parallelism over MPI (needs fastnn[mpi])
GROUPS["seq"] = "fastnn.bench.seq"  # Conv1D (valid/same/causal) and 1-D pooling
GROUPS["vision"] = "fastnn.bench.vision"  # MobileNetV2 end to end (issue #15)

GROUPS["sequence"] = "fastnn.bench.sequence"  # issue #14: Embedding-LSTM/GRU-Dense training vs torch and Keras
# What `python -m fastnn.bench all` runs: overhead adds about half a minute to a run of many minutes;
# pipeline (the data loader, not a kernel) and models (train's end-to-end comparison again, on other
# cases) are left out.
ALL = ("gemm", "conv", "elementwise", "train", "import", "overhead")
GROUPS["gpu"] = "fastnn.bench.gpu"  # issue #17: CUDA kernels vs PyTorch on the same GPU
