"""Sample inputs: the user's `.npz` (one array per model input, batch first), checked against the
model's inputs, or seeded standard-normal samples when none are given.

    xs = samples.read(Path("samples.npz"), loaded.inputs)     # list of arrays, one per input
    xs = samples.random(loaded.inputs, n=16)                   # calibration: "random"

Arrays are matched by input name, else `arr_0, arr_1, ...` in input order (np.savez(f, a, b)).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pipeline.package.sources import BadInput, TensorSpec

RANDOM_SAMPLES = 16
RANDOM_SEED = 0


def read(path: Path, inputs: list[TensorSpec], extra: tuple[str, ...] = ()) -> list[np.ndarray]:
    """The arrays of `path` in input order; `extra` names keys allowed beside them (e.g. `y`)."""
    if not Path(path).is_file():
        raise BadInput(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"{path}: not a readable .npz file ({type(e).__name__}: {str(e)[:150]})") from None
    data = {k: v for k, v in arrays.items() if k not in extra}
    if not data:
        raise BadInput(f"{path}: holds no arrays; expected one per model input "
                       f"({', '.join(i.name for i in inputs)})")
    names = [i.name for i in inputs]
    if set(names) <= set(data):
        picked = [(n, data[n]) for n in names]
        unused = sorted(set(data) - set(names))
    elif sorted(data) == [f"arr_{i}" for i in range(len(data))]:
        if len(data) != len(inputs):
            raise BadInput(f"{path}: {len(data)} arrays but the model takes {len(inputs)} input(s) "
                           f"({', '.join(names)})")
        picked = [(f"arr_{i}", data[f"arr_{i}"]) for i in range(len(inputs))]
        unused = []
    else:
        raise BadInput(f"{path}: arrays {', '.join(sorted(data))} do not match the model's inputs "
                       f"({', '.join(names)}): name them by input or save them in order (arr_0, ...)")
    if unused:
        raise BadInput(f"{path}: arrays {', '.join(unused)} match no model input ({', '.join(names)})")
    n = {len(a) if a.ndim else 0 for _, a in picked}
    if n == {0}:
        raise BadInput(f"{path}: the arrays hold 0 samples")
    if len(n) != 1:
        raise BadInput(f"{path}: arrays differ in sample count ({', '.join(f'{k}: {len(a)}' for k, a in picked)})")
    for (key, a), spec in zip(picked, inputs):
        want = tuple(spec.shape[1:])
        if a.ndim != len(spec.shape) or any(w is not None and w > 0 and w != g for w, g in zip(want, a.shape[1:])):
            raise BadInput(f"{path}: array {key!r} for input {spec.name!r} has shape {tuple(a.shape)}; the model "
                           f"takes (N, {', '.join('?' if d is None else str(d) for d in want)}) (batch first)")
        if np.dtype(a.dtype) != np.dtype(spec.dtype):
            raise BadInput(f"{path}: array {key!r} for input {spec.name!r} has dtype {a.dtype}; the model "
                           f"takes {spec.dtype}")
    return [np.ascontiguousarray(a) for _, a in picked]


def random(inputs: list[TensorSpec], n: int = RANDOM_SAMPLES) -> list[np.ndarray]:
    """Seeded standard-normal samples in each input's shape (an open dimension must be given by samples)."""
    rng = np.random.default_rng(RANDOM_SEED)
    out = []
    for spec in inputs:
        dims = spec.shape[1:]
        if any(d is None or d < 1 for d in dims):
            raise BadInput(f"input {spec.name!r} has an open dimension {spec.shape}: give --samples")
        if not np.issubdtype(np.dtype(spec.dtype), np.floating):
            raise BadInput(f"input {spec.name!r} takes {spec.dtype}: random samples would be meaningless; "
                           "give --samples")
        out.append(rng.standard_normal((n, *dims)).astype(spec.dtype))
    return out


def labels(path: Path, n: int) -> np.ndarray:
    """The `y` array of an --eval file (one label per sample)."""
    with np.load(path, allow_pickle=False) as z:
        if "y" not in z.files:
            raise BadInput(f"{path}: an --eval file needs a 'y' array (one label per sample) beside the inputs")
        y = z["y"]
    if y.ndim != 1 or len(y) != n:
        raise BadInput(f"{path}: 'y' has shape {tuple(y.shape)}; expected ({n},), one label per sample")
    return y
