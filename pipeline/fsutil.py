"""Atomic writes, content hashes and the run lock.

Every file the pipeline produces is written to a temporary name in the same folder and renamed
into place, so an interrupted run never leaves a half-written artifact or record behind.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

ROOT = Path(__file__).resolve().parent.parent
TMP_PREFIX = ".tmp-"   # atomic writes go through hidden `.tmp-<name>.<random>/` folders next to the file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def source_hash(paths: Iterable[Path]) -> str:
    """Hash of source files: a change to the code that produced something invalidates it."""
    return sha256_text(*[Path(p).read_bytes() for p in sorted(paths, key=str)])


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path that becomes `dest` (by rename) only if the block succeeds.

    The temporary file keeps `dest`'s own name inside a hidden folder next to it: writers that
    insist on a file ending (Keras) or embed the name (TorchScript archives) see the real name.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{dest.name}.", dir=dest.parent))
    except OSError as e:   # read-only or full folder: name the file we could not write
        raise OSError(e.errno, e.strerror, str(dest)) from None
    tmp_path = tmp_dir / dest.name
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise FileNotFoundError(f"{dest}: the writer produced no file")
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    except OSError as e:
        if e.filename and str(e.filename) != str(dest) and str(tmp_dir) in str(e.filename):
            raise OSError(e.errno, e.strerror, str(dest)) from None   # ENOSPC on the temp: name the target
        raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_atomic(dest: Path, data: str | bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def write_json_atomic(dest: Path, obj) -> None:
    write_atomic(dest, json.dumps(obj, indent=1, sort_keys=True, default=str))


def write_with(dest: Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` write to a temporary path that becomes `dest` only on success."""
    with atomic_path(dest) as tmp:
        writer(tmp)


def save_npz(dest: Path, **arrays) -> None:
    import numpy as np

    def writer(tmp: Path) -> None:
        np.savez(tmp, **arrays)
    write_with(dest, writer)


class LockedError(RuntimeError):
    pass


def clean_stale_tmp(folder: Path, older_than: float) -> list[Path]:
    """Remove `.tmp-*` folders (left by a run that was SIGKILLed mid-write) older than `older_than`.

    Only the holder of the exclusive lock calls this: every writer of the tree either holds that lock
    or is its child, so a temp folder older than the lock cannot belong to a live writer.
    """
    removed = []
    for dirpath, dirnames, _ in os.walk(folder):
        for d in list(dirnames):
            if d.startswith(TMP_PREFIX):
                p = Path(dirpath) / d
                dirnames.remove(d)
                try:
                    if p.stat().st_mtime < older_than:
                        shutil.rmtree(p, ignore_errors=True)
                        removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


@contextlib.contextmanager
def scratch(folder: Path) -> Iterator[Path]:
    """This run's temp folder, `<folder>/.tmp-run-<pid>`, made the process's (and its workers') TMPDIR:
    every worker, peer and output temp folder lives there, so a SIGKILLed run leaves nothing in the
    system's temp dir and the next run on the tree removes what it left (`clean_stale_tmp`)."""
    d = Path(folder) / f"{TMP_PREFIX}run-{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)
    old_env, old_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(d.resolve())
    tempfile.tempdir = str(d.resolve())
    try:
        yield d
    finally:
        tempfile.tempdir = old_dir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def run_lock(folder: Path, what: str, shared: bool = False) -> Iterator[None]:
    """One writer per tree: a second `make export`/`bench` on the same folder stops with a clear message.

    `shared=True` is for readers (bench reads artifacts): many may hold it, but not while a writer
    does. The exclusive holder removes stale temp folders of interrupted runs (see clean_stale_tmp).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / ".lock"
    f = open(lock_file, "a+")
    try:
        fcntl.flock(f.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise LockedError(f"{lock_file}: another run holds the lock on this tree, so this {what} "
                              "run stops; wait for it to finish") from None
        raise
    try:
        if not shared:
            # mark the tree as ours; anything half-written before this moment is from a dead run
            acquired = time.time()
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            clean_stale_tmp(folder, acquired)
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
