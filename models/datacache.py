"""Generated data made once per content: a generator marked `@cached` keeps what it returns (a tuple
of arrays) in the folder that `using` names, keyed by the data modules' code and the call's arguments.

    with datacache.using(artifacts / ".data-cache"):      # pipeline/train.py
        data = spec.load_data(seed)

Why: ds_cnn_kws and kws_gru (and ds_cnn_l) train on the same keyword set, `make_kws_dataset(0, 3000,
600)`, which took 180 s of a worker on a loaded 2-core machine; it is now made once, and a retrain
after a model edit reuses every model's data. Outside `using` (tests, notebooks) nothing is cached.
The folder is scoped by a context variable, not a global: each `using` block sees its own.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import inspect
import os
from pathlib import Path

import numpy as np

_FOLDER: contextvars.ContextVar[Path | None] = contextvars.ContextVar("datacache_folder", default=None)


@contextlib.contextmanager
def using(folder: Path):
    token = _FOLDER.set(Path(folder))
    try:
        yield
    finally:
        _FOLDER.reset(token)


def _code_hash(fn) -> str:
    """The generator's module and every data module it may call into (models/data_*.py)."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted({Path(inspect.getfile(fn)), *here.glob("data_*.py")}):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def cached(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        folder = _FOLDER.get()
        if folder is None:
            return fn(*args, **kwargs)
        call = f"{_code_hash(fn)}|{fn.__module__}.{fn.__qualname__}|{args!r}|{sorted(kwargs.items())!r}"
        f = folder / f"{fn.__name__}-{hashlib.sha256(call.encode()).hexdigest()[:20]}.npz"
        try:
            with np.load(f) as z:
                return tuple(z[f"a{i}"] for i in range(len(z.files)))
        except (OSError, ValueError, KeyError):
            pass   # missing or unreadable: make it again
        out = fn(*args, **kwargs)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{f.stem}.{os.getpid()}.tmp.npz"   # renamed whole: a reader never sees half
        try:
            np.savez(tmp, **{f"a{i}": a for i, a in enumerate(out)})
            os.replace(tmp, f)
        finally:
            tmp.unlink(missing_ok=True)
        return out
    return wrapper
