"""Character-level text generation with an LSTM (Keras's lstm_text_generation example, with an Embedding
instead of one-hot inputs): learn to predict the next character of a text, then write new text.

Trains on the bundled opening of *Alice's Adventures in Wonderland* (public domain, examples/data/) or on
`--text FILE`. `--limit N` uses the first N characters and `--epochs`, `--units`, `--generate` make a
quick run.
"""
import argparse
import os

import numpy as np

from fastnn.layers import LSTM, Dense, Embedding, Input
from fastnn.models import Sequential

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default=os.path.join(HERE, "data", "alice_chapter1.txt"))
    ap.add_argument("--limit", type=int, default=None, help="use only the first N characters")
    ap.add_argument("--maxlen", type=int, default=40, help="characters of context")
    ap.add_argument("--step", type=int, default=3, help="stride between training windows")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--generate", type=int, default=200, help="characters to write after training")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def windows(ids, maxlen, step):
    """(x, y): every `step`-th run of `maxlen` character ids (N, maxlen) and the id that follows each (N,)."""
    starts = np.arange(0, len(ids) - maxlen, step)
    x = np.stack([ids[s:s + maxlen] for s in starts])
    return x, ids[starts + maxlen]


def sample(probabilities, temperature, rng):
    """Draw an index from `probabilities` sharpened (temperature < 1) or flattened (> 1)."""
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-12)) / temperature
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def generate(model, seed_text, length, temperature, char_to_id, chars, rng):
    context = [char_to_id[c] for c in seed_text]
    out = []
    for _ in range(length):
        probs = model.predict(np.array([context[-len(seed_text):]], dtype=np.int32), verbose=0)[0]
        nxt = sample(probs, temperature, rng)
        context.append(nxt)
        out.append(chars[nxt])
    return "".join(out)


args = parse_args()
with open(args.text, encoding="utf-8") as f:
    text = f.read().lower()
if args.limit:
    text = text[:args.limit]
chars = sorted(set(text))
char_to_id = {c: i for i, c in enumerate(chars)}
print(f"{len(text)} characters, {len(chars)} distinct")
ids = np.array([char_to_id[c] for c in text], dtype=np.int32)
x, y = windows(ids, args.maxlen, args.step)
print(f"{len(x)} training windows of {args.maxlen} characters")

model = Sequential([
    Input(shape=(args.maxlen,)),
    Embedding(len(chars), 32),
    LSTM(args.units),
    Dense(len(chars), activation="softmax"),
])
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
print(f"Final training accuracy: {history.history['accuracy'][-1]:.4f}")

rng = np.random.default_rng(args.seed)
start = int(rng.integers(0, len(text) - args.maxlen))
seed_text = text[start:start + args.maxlen]
print(f'Seed: "{seed_text}"')
for temperature in (0.2, 0.5, 1.0):
    written = generate(model, seed_text, args.generate, temperature, char_to_id, chars, rng)
    print(f"Generated (temperature {temperature}): {seed_text}{written}")
