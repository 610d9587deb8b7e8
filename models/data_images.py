"""Procedural RGB image set: 10 classes of shapes and textures drawn with numpy (no downloads).

Every image has a random smooth colour background with pixel noise and a low-contrast distractor
line; the class object has a random colour, size and position (textures cover a random patch):

    0 disc   1 square   2 triangle   3 ring   4 plus/cross
    5 horizontal stripes   6 vertical stripes   7 checkerboard   8 diagonal stripes   9 dots

Deterministic given the seed (numpy Generator). Returned in PyTorch layout NCHW, float32 in [0, 1].
"""
from __future__ import annotations

import numpy as np

from models.datacache import cached

CLASSES = ("disc", "square", "triangle", "ring", "cross",
           "hstripes", "vstripes", "checker", "dstripes", "dots")


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours with a guaranteed contrast."""
    while True:
        bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if np.abs(bg - fg).sum() > 0.6:
            return bg, fg


def _mask(cls: int, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    r = rng.uniform(0.12, 0.3) * size
    if cls == 0:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    if cls == 1:
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if cls == 2:  # upright or inverted isoceles triangle
        sgn = rng.choice([-1.0, 1.0])
        t = (sgn * (yy - cy) + r) / (2 * r)  # 0 at apex .. 1 at base
        return (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * r)
    if cls == 3:
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        return (d2 <= r ** 2) & (d2 >= (r * rng.uniform(0.45, 0.7)) ** 2)
    if cls == 4:
        w = r * rng.uniform(0.25, 0.4)
        box = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
        return box & ((np.abs(yy - cy) <= w) | (np.abs(xx - cx) <= w))
    # textures on a random patch
    h0, w0 = rng.uniform(0.0, 0.35, 2) * size
    h1, w1 = h0 + rng.uniform(0.5, 0.65) * size, w0 + rng.uniform(0.5, 0.65) * size
    patch = (yy >= h0) & (yy < h1) & (xx >= w0) & (xx < w1)
    period = rng.uniform(6, 14)
    phase = rng.uniform(0, period)
    if cls == 5:
        tex = ((yy + phase) % period) < period / 2
    elif cls == 6:
        tex = ((xx + phase) % period) < period / 2
    elif cls == 7:
        tex = (((yy + phase) // (period / 2)) + ((xx + phase) // (period / 2))) % 2 == 0
    elif cls == 8:
        sgn = rng.choice([-1.0, 1.0])
        tex = ((yy + sgn * xx + phase) % period) < period / 2
    else:
        pts = rng.uniform(0, size, (int(rng.integers(25, 50)), 2))
        rad = rng.uniform(2.0, 3.5)
        tex = np.zeros_like(patch)
        for py, px in pts:
            tex |= (yy - py) ** 2 + (xx - px) ** 2 <= rad ** 2
    return patch & tex


def make_image(cls: int, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bg, fg = _colour_pair(rng)
    # smooth background gradient in a random direction
    ang = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(ang) * xx + np.sin(ang) * yy) / size
    img = bg[:, None, None] + rng.uniform(-0.2, 0.2, 3)[:, None, None] * grad[None]
    # distractor: a thin, low-contrast random line
    a, b, c = rng.normal(size=3)
    line = np.abs(a * xx + b * yy - c * size - (a + b) * size / 2) / np.hypot(a, b) < 1.0
    img = img + line[None] * rng.uniform(-0.15, 0.15, 3)[:, None, None]
    m = _mask(cls, rng, yy, xx, size)
    img = np.where(m[None], fg[:, None, None], img)
    img = img + rng.normal(0, 0.05, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


@cached
def make_dataset(seed: int, n_train: int, n_test: int, size: int = 96):
    """-> x_train, y_train, x_test, y_test (balanced classes, shuffled)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % len(CLASSES)
    rng.shuffle(y)
    x = np.empty((n, 3, size, size), np.float32)
    for i, c in enumerate(y):
        x[i] = make_image(int(c), rng, size)
    y = y.astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
