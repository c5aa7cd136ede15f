"""Augmentation cost table: a CIFAR-10-shaped convnet's training step with RandomFlip + RandomRotation in front
vs the same model without them (issue #15's target: >= 0.9x the speed), and the two layers' forward pass alone.

Model: Input(32, 32, 3) -> [RandomFlip("horizontal"), RandomRotation(0.1)] -> Conv2D(32, 3, relu) ->
MaxPooling2D -> Conv2D(64, 3, relu) -> MaxPooling2D -> Flatten -> Dense(10); Adam, sparse categorical
cross-entropy; one ``train_on_batch`` per step on a fixed batch. Both variants are timed in one worker, sample
by sample in turn (``_harness.timeit_interleaved``), so load from other processes hits them alike.

    fastnn-bench augment [--quick] [--threads N]     (default: 1 thread)
"""
import os

import numpy as np

from fastnn.bench import _harness as H

BATCHES = (32, 128)


def _model(augment):
    import fastnn
    from fastnn import layers
    fastnn.utils.set_random_seed(0)
    front = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)] if augment else []
    model = fastnn.models.Sequential([fastnn.Input((32, 32, 3))] + front + [
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10)])
    model.compile("adam", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def measure(quick):
    from fastnn import layers
    rows = []
    for bs in BATCHES[:1] if quick else BATCHES:
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (bs, 32, 32, 3)).astype(np.float32)
        y = rng.integers(0, 10, bs).astype(np.int32)
        plain, aug = _model(False), _model(True)
        flip, rot = layers.RandomFlip("horizontal", seed=0), layers.RandomRotation(0.1, seed=0)
        times = H.timeit_interleaved({
            "plain": lambda: plain.train_on_batch(x, y),
            "augmented": lambda: aug.train_on_batch(x, y),
            "flip+rotation forward": lambda: rot._forward(flip._forward(x, True, False)[0], True, False),
        }, reps=3 if quick else 7, min_sample_s=0.02 if quick else 0.1)
        for variant, s in times.items():
            rows.append(dict(batch=bs, variant=variant, ms=s * 1e3, samples_s=bs / s,
                             speed_vs_plain=times["plain"] / s if variant == "augmented" else None))
    return rows


def table(rows):
    out = ["| batch | variant | ms/step | samples/s | speed vs plain |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["speed_vs_plain"] is None else f"{r['speed_vs_plain']:.2f}×"
        out.append(f"| {r['batch']} | {r['variant']} | {r['ms']:.2f} | {r['samples_s']:,.0f} | {ratio} |")
    return "\n".join(out)


def worker(args):
    """Every variant in this one process (args.worker is "all"), interleaved."""
    H.emit_rows(measure(args.quick))


def main(args):
    return H.one_worker_main("augment", args, lambda t: (
        f"# augmentation: CIFAR-shaped convnet, train_on_batch with/without RandomFlip+RandomRotation; "
        f"threads {t}; {os.cpu_count()} cores; commit {H.commit()}"), table)
