"""Ways a rank can fail, for tests/test_distribution_mpi.py (run under `mpiexec -n 2`):

    python faults.py raise|kill|exit|model|data|stop|stuck
raise: rank 1 raises in a callback at epoch 2; kill: rank 1 is killed by SIGKILL mid-epoch; exit: rank 1
leaves the script before fit; model/data: rank 1 has a different model / different data; stop: a callback
stops training on rank 0 only; stuck: rank 1 stalls in a callback and DataParallel(timeout=2) gives up.
Every one must end the job with an error, none may hang.
"""
import os
import signal
import sys
import time


import fastnn
from fastnn import layers
from fastnn.distribution import DataParallel, rank, set_distribution

mode = sys.argv[1]
fastnn.set_num_threads(1)
set_distribution(DataParallel(timeout=2 if mode == "stuck" else None))
fastnn.utils.set_random_seed(3)
(x, y), _ = fastnn.datasets.digits.load_data()
x = (x / 16.0).astype("float32")
if mode == "data" and rank() == 1:
    x = x[::-1].copy()
units = 17 if mode == "model" and rank() == 1 else 16
model = fastnn.Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(units, activation="relu"),
                           layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")


class Fault(fastnn.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 5:
            if mode == "raise" and rank() == 1:
                raise RuntimeError("injected failure on rank 1")
            if mode == "kill" and rank() == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "stop" and rank() == 0:
                self.model.stop_training = True
            if mode == "stuck" and rank() == 1:
                time.sleep(120)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


if mode == "exit" and rank() == 1:
    sys.exit(0)
model.fit(x, y, batch_size=32, epochs=4, verbose=0, callbacks=[Fault()])
model.evaluate(x, y, verbose=0)
print(f"rank {rank()} finished", flush=True)
