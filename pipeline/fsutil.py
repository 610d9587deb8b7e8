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
    """Content hash of a file, or of a directory artifact (a Core ML `.mlpackage`): its files in
    sorted order, each hashed with its relative name, so a renamed or changed member changes it."""
    h = hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        for f in _files_of(path):
            h.update(str(f.relative_to(path)).encode() + b"\0")
            h.update(sha256_file(f).encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_of(folder: Path) -> list[Path]:
    return sorted((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: str(p.relative_to(folder)))


def size_bytes(path: Path) -> int:
    """Size of a file, or the sum of a directory artifact's files."""
    path = Path(path)
    return sum(f.stat().st_size for f in _files_of(path)) if path.is_dir() else path.stat().st_size


def sha256_text(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def source_hash(paths: Iterable[Path]) -> str:
    """Hash of source files: a change to the code that produced something invalidates it."""
    return sha256_text(*[Path(p).read_bytes() for p in sorted(paths, key=str)])


def zipped_size(path: Path) -> int:
    """Size as the artifact would sit deflated in an APK/IPA (deflate level 9); a directory artifact
    is zipped whole, as an IPA holds a `.mlpackage`."""
    import io
    import zipfile
    import zlib
    path = Path(path)
    if not path.is_dir():
        return len(zlib.compress(path.read_bytes(), 9))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for f in _files_of(path):
            z.write(f, str(f.relative_to(path)))
    return buf.tell()


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path that becomes `dest` (by rename) only if the block succeeds.

    The temporary file keeps `dest`'s own name inside a hidden folder next to it: writers that
    insist on a file ending (Keras) or embed the name (TorchScript archives) see the real name.
    A writer may make a directory there instead (a Core ML `.mlpackage`): it replaces `dest` by two
    renames (the old one aside, the new one in), so a reader sees the old, nothing, or the new one,
    never a half-written one.
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
        for f in _files_of(tmp_path) if tmp_path.is_dir() else [tmp_path]:
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if tmp_path.is_dir() and dest.exists():
            os.replace(dest, tmp_dir / ".old")   # removed with tmp_dir below
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
