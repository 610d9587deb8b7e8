"""Sample inputs: the user's `.npz` (one array per model input, batch first), checked against the
model's inputs, or seeded standard-normal samples when none are given.

    xs = samples.read(Path("samples.npz"), loaded.inputs)     # list of arrays, one per input
    xs = samples.random(loaded.inputs, n=16)                   # calibration: "random"

Arrays are matched by input name, else `arr_0, arr_1, ...` in input order (np.savez(f, a, b)).

Bounded before anything is decompressed: each member's .npy header (shape, dtype) is read from the zip
first; Python-object (pickled) arrays are refused, an array may declare at most MAX_DECLARED_BYTES, and
only the first MAX_SAMPLES samples are read (a stream of exactly that many rows: a deflate bomb costs what
is read, not what it declares). NaN or Inf is refused naming the array and the sample; a MemoryError is
one line. Every refusal is a BadInput naming the file (exit 2).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pipeline.package.sources import BadInput, TensorSpec

RANDOM_SAMPLES = 16
RANDOM_SEED = 0
MAX_SAMPLES = 1000                  # the first N samples of a file are used (parity, calibration, eval)
MAX_DECLARED_BYTES = 4 * 2**30      # what one array may declare (shape x dtype), before reading a byte
MAX_READ_BYTES = 2 * 2**30          # what the first MAX_SAMPLES samples of one array may take


def _header(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype, bool, int]:
    """(shape, dtype, fortran order, header length) from the member's first bytes only."""
    key = info.filename[:-4]
    try:
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"npy format version {version}")
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(f))
            return tuple(shape), dtype, fortran, f.tell()
    except ValueError as e:
        msg = str(e).splitlines()[0]
        if "allow_pickle" in msg or "pickle" in msg.lower():
            raise BadInput(f"{path}: array {key!r} holds Python objects (a pickle); refused") from None
        raise BadInput(f"{path}: array {key!r} is not a readable .npy ({msg[:120]})") from None
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        raise BadInput(f"{path}: array {key!r} is not readable ({type(e).__name__}: {str(e)[:120]})") from None


def _read_member(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[np.ndarray, int]:
    """The first MAX_SAMPLES samples of one member, and how many it declares; bounds checked first."""
    key = info.filename[:-4]
    shape, dtype, fortran, head = _header(path, z, info)
    if dtype.hasobject:
        raise BadInput(f"{path}: array {key!r} holds Python objects (dtype {dtype}, a pickle); refused")
    if not shape:
        raise BadInput(f"{path}: array {key!r} is a 0-d scalar; samples need a batch dimension first "
                       "(shape (N, ...), N samples)")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > MAX_DECLARED_BYTES:
        raise BadInput(f"{path}: array {key!r} declares shape {shape} {dtype} = {declared / 2**30:.1f} GiB, over "
                       f"the {MAX_DECLARED_BYTES // 2**30} GiB limit for a samples file; pass fewer samples "
                       f"(the first {MAX_SAMPLES} are used)")
    n = shape[0]
    take = min(n, MAX_SAMPLES) if not fortran else n
    row = int(np.prod(shape[1:], dtype=object)) * dtype.itemsize
    want = take * row
    if want > MAX_READ_BYTES:
        raise BadInput(f"{path}: array {key!r}: {take} samples of shape {shape[1:]} {dtype} would take "
                       f"{want / 2**30:.1f} GiB, over the {MAX_READ_BYTES // 2**30} GiB limit")
    if head + declared > info.file_size:
        raise BadInput(f"{path}: array {key!r} declares {declared} bytes but its entry holds "
                       f"{info.file_size - head}: truncated or corrupt")
    try:
        with z.open(info) as f:
            f.seek(head)
            data = f.read(want)
        if len(data) != want:
            raise BadInput(f"{path}: array {key!r} is truncated ({len(data)} of {want} bytes)")
        a = np.frombuffer(data, dtype=dtype)
        a = a.reshape(shape, order="F")[:take] if fortran else a.reshape((take, *shape[1:]))
    except MemoryError:
        raise BadInput(f"{path}: array {key!r}: out of memory reading {want / 2**20:.0f} MB") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise BadInput(f"{path}: array {key!r} is not readable ({type(e).__name__}: {str(e)[:120]})") from None
    return np.ascontiguousarray(a), n


def check_npy(path: Path, what: str) -> None:
    """A plain .npy (bench --input): numeric, within MAX_DECLARED_BYTES; read from its header only."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
    except (OSError, ValueError, EOFError) as e:
        raise BadInput(f"{path}: {what} is not a readable .npy ({str(e).splitlines()[0][:120]})") from None
    if dtype.hasobject:
        raise BadInput(f"{path}: {what} holds Python objects (dtype {dtype}, a pickle); refused")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize > MAX_DECLARED_BYTES:
        raise BadInput(f"{path}: {what} declares shape {tuple(shape)} {dtype}, over "
                       f"{MAX_DECLARED_BYTES // 2**30} GiB; refused")


def load(path: Path) -> dict[str, np.ndarray]:
    """key -> the first MAX_SAMPLES samples of each array of an .npz, every bound checked before reading."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BadInput(f"{path}: not a readable .npz file (not a zip archive: {str(e)[:100]}); "
                       "save it with numpy.savez") from None
    with z:
        infos = z.infolist()
        if len(infos) > 1000:
            raise BadInput(f"{path}: {len(infos)} entries; a samples file holds one array per model input")
        bad = [i.filename for i in infos if not i.filename.endswith(".npy")]
        if bad:
            raise BadInput(f"{path}: entry {bad[0]!r} is not a .npy array; not an .npz written by numpy.savez")
        arrays = {i.filename[:-4]: _read_member(path, z, i)[0] for i in infos}
    for key, a in arrays.items():
        _finite(path, key, a)
    return arrays


def precheck(path: Path) -> None:
    """What is wrong with a samples file whatever the model: unreadable, hostile (`load`), no arrays, or
    no samples. Run before a worker opens the model, so these cost a moment, not a model load."""
    arrays = load(path)
    if not arrays:
        raise BadInput(f"{path}: holds no arrays; expected one per model input")
    if all(a.ndim and not len(a) for a in arrays.values()):
        raise BadInput(f"{path}: the arrays hold 0 samples")


def _finite(path: Path, key: str, a: np.ndarray) -> None:
    if np.issubdtype(a.dtype, np.inexact) and a.size:
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise BadInput(f"{path}: array {key!r} has NaN or Inf in sample {i} ({int(bad.sum())} samples in all); "
                           "refused (parity against NaN means nothing)")


def read(path: Path, inputs: list[TensorSpec], extra: tuple[str, ...] = ()) -> list[np.ndarray]:
    """The arrays of `path` in input order; `extra` names keys allowed beside them (e.g. `y`)."""
    for spec in inputs:
        if not spec.shape:
            raise BadInput(f"input {spec.name!r} is a 0-d scalar: package needs a batch dimension on every input "
                           "(export the model with this input shaped (1,))")
    arrays = load(path)
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
    n = {len(a) for _, a in picked}
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
        if not spec.shape:
            raise BadInput(f"input {spec.name!r} is a 0-d scalar: package needs a batch dimension on every input "
                           "(export the model with this input shaped (1,))")
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
    arrays = load(path)
    if "y" not in arrays:
        raise BadInput(f"{path}: an --eval file needs a 'y' array (one label per sample) beside the inputs")
    y = arrays["y"]
    if y.ndim != 1 or len(y) != n:
        raise BadInput(f"{path}: 'y' has shape {tuple(y.shape)}; expected ({n},), one label per sample")
    return y
