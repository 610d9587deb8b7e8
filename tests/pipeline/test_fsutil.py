from __future__ import annotations

import pytest

from pipeline import fsutil


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "a.bin"
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces(tmp_path):
    dest = tmp_path / "a.txt"
    fsutil.write_atomic(dest, "one")
    fsutil.write_atomic(dest, "two")
    assert dest.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_second_run_is_refused_with_a_clear_message(tmp_path):
    with fsutil.run_lock(tmp_path, "bench"):
        with pytest.raises(fsutil.LockedError, match="another run holds the lock on this tree, so this export run stops"):
            with fsutil.run_lock(tmp_path, "export"):
                pass
    with fsutil.run_lock(tmp_path, "export"):  # released afterwards
        pass


def test_shared_readers_exclude_a_writer(tmp_path):
    with fsutil.run_lock(tmp_path, "bench", shared=True):
        with fsutil.run_lock(tmp_path, "bench", shared=True):  # two readers are fine
            with pytest.raises(fsutil.LockedError, match="this export run stops"):
                with fsutil.run_lock(tmp_path, "export"):
                    pass
    with fsutil.run_lock(tmp_path, "export"):
        with pytest.raises(fsutil.LockedError, match="this bench run stops"):
            with fsutil.run_lock(tmp_path, "bench", shared=True):
                pass


def test_lock_holder_removes_stale_temp_folders_only(tmp_path):
    """A SIGKILLed writer leaves `.tmp-*` folders; the next lock holder removes those older than it."""
    import os
    import time
    stale = tmp_path / "m" / ".tmp-a.tflite.x1"
    stale.mkdir(parents=True)
    (stale / "a.tflite").write_bytes(b"half")
    old = time.time() - 60
    os.utime(stale, (old, old))
    keep = tmp_path / "m" / "a.tflite"
    keep.write_bytes(b"whole")
    with fsutil.run_lock(tmp_path, "export"):
        assert not stale.exists() and keep.read_bytes() == b"whole"
        fresh = tmp_path / "m" / ".tmp-b.tflite.x2"   # a writer of this run: untouched
        fresh.mkdir()
        assert fsutil.clean_stale_tmp(tmp_path, time.time() - 30) == [] and fresh.exists()
