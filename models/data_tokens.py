"""Generated token-like feature sequences for sequence classification (numpy, seeded).

A fixed random "vocabulary" of feature vectors (FILLER filler tokens, KEYS key tokens, dim FEAT) is
drawn from a constant seed, so train and test share it. Each sequence has LENGTH positions of random
filler tokens with exactly two key tokens at distinct random positions; every position gets Gaussian
feature noise. The label is the ordered pair (type of the first key, type of the second key), i.e.
KEYS**2 classes: it depends on which tokens occur *and* on their order, so a bag-of-features model
cannot solve the asymmetric pairs and the classifier needs attention plus position information.
"""
from __future__ import annotations

import numpy as np

from models.datacache import cached

LENGTH, FEAT = 24, 32
FILLER, KEYS = 8, 3
NUM_CLASSES = KEYS * KEYS
NOISE = 0.35
VOCAB_SEED = 1234


def vocabulary(feat: int = FEAT) -> np.ndarray:
    rng = np.random.default_rng(VOCAB_SEED)
    v = rng.normal(0, 1, (FILLER + KEYS, feat))
    return v / np.linalg.norm(v, axis=1, keepdims=True) * np.sqrt(feat) / 2


def make_sequences(rng: np.random.Generator, n: int, length: int = LENGTH, feat: int = FEAT):
    vocab = vocabulary(feat)
    tokens = rng.integers(0, FILLER, (n, length))
    first, second = rng.integers(0, KEYS, n), rng.integers(0, KEYS, n)
    pos = np.sort(np.argsort(rng.random((n, length)), axis=1)[:, :2], axis=1)  # two distinct positions
    rows = np.arange(n)
    tokens[rows, pos[:, 0]] = FILLER + first
    tokens[rows, pos[:, 1]] = FILLER + second
    x = vocab[tokens] + rng.normal(0, NOISE, (n, length, feat))
    return x.astype(np.float32), (first * KEYS + second).astype(np.int64)


@cached
def make_dataset(seed: int, n_train: int, n_test: int, length: int = LENGTH, feat: int = FEAT):
    """-> x_train, y_train, x_test, y_test; `length` x `feat` sequences (default the toy 24 x 32)."""
    rng = np.random.default_rng(seed)
    x, y = make_sequences(rng, n_train + n_test, length, feat)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
