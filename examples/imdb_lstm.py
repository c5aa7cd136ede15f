"""Sentiment classification with an LSTM on IMDB reviews (Keras's imdb_lstm example).

Uses `fastnn.datasets.imdb` when the file is cached (or downloadable); otherwise (or with
`--dataset generated`) a small generated sentiment-like set in the same format: word-index reviews
(1 = start, 2 = out of vocabulary, words from 3) whose label follows their "positive" and "negative"
words. `--limit N` keeps N reviews per split and `--epochs`, `--maxlen`, `--units` make a quick run.
"""
import argparse

import numpy as np

from fastnn.layers import LSTM, Dense, Embedding, Input
from fastnn.models import Sequential
from fastnn.utils import pad_sequences


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["auto", "imdb", "generated"], default="auto")
    ap.add_argument("--max-features", type=int, default=20000, help="vocabulary size (most frequent words)")
    ap.add_argument("--maxlen", type=int, default=80, help="words kept per review (the last ones)")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training/test reviews")
    return ap.parse_args()


def generated_reviews(n, num_words, seed, min_len=8, max_len=60):
    """`n` reviews in IMDB's encoding and their labels: neutral filler words plus a few words from a
    positive (label 1) or negative (label 0) list, with some words of the other side as noise."""
    rng = np.random.default_rng(seed)
    words = np.arange(3, num_words)
    positive, negative, neutral = words[:20], words[20:40], words[40:]
    x, y = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        label = i % 2
        length = int(rng.integers(min_len, max_len))
        review = rng.choice(neutral, length)
        strong, weak = (positive, negative) if label else (negative, positive)
        spots = rng.choice(length, size=max(3, length // 5), replace=False)
        review[spots] = rng.choice(strong, len(spots))
        review[spots[:len(spots) // 4]] = rng.choice(weak, len(spots) // 4)
        x.append([1] + review.tolist())
        y[i] = label
    order = rng.permutation(n)
    return np.array([x[i] for i in order], dtype=object), y[order]


def load(args):
    if args.dataset in ("auto", "imdb"):
        from fastnn.datasets import imdb
        try:
            return imdb.load_data(num_words=args.max_features)
        except (OSError, ValueError) as e:
            if args.dataset == "imdb":
                raise
            print(f"IMDB not available ({str(e).splitlines()[0]}); using a generated sentiment set")
    n = args.limit or 2000
    return generated_reviews(n, args.max_features, seed=1), generated_reviews(n, args.max_features, seed=2)


args = parse_args()
(x_train, y_train), (x_test, y_test) = load(args)
if args.limit:
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_test, y_test = x_test[:args.limit], y_test[:args.limit]
print(f"{len(x_train)} train and {len(x_test)} test reviews")
x_train = pad_sequences(x_train, maxlen=args.maxlen)   # (N, maxlen) int32, zeros in front of short reviews
x_test = pad_sequences(x_test, maxlen=args.maxlen)

model = Sequential([
    Input(shape=(args.maxlen,)),
    Embedding(args.max_features, 128),
    LSTM(args.units),
    Dense(1, activation="sigmoid"),
])
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_data=(x_test, y_test))
score, acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
print(f"Test score: {score:.4f}")
print(f"Test accuracy: {acc:.4f}")
