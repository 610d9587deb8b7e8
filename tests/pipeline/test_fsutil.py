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


def test_directory_artifact_is_atomic_hashed_and_sized(tmp_path):
    """A Core ML .mlpackage is a directory: written whole or not at all, replaced whole, hashed over
    its files (names and contents), sized as the sum of its files."""
    dest = tmp_path / "m.mlpackage"

    def write(tmp, body: bytes, name: str = "weight.bin"):
        (tmp / "Data").mkdir(parents=True)
        (tmp / "Manifest.json").write_text("{}")
        (tmp / "Data" / name).write_bytes(body)
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(dest) as tmp:
            write(tmp, b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    fsutil.write_with(dest, lambda t: write(t, b"one"))
    first = fsutil.sha256_file(dest)
    assert fsutil.size_bytes(dest) == 2 + 3 and fsutil.zipped_size(dest) > 0
    fsutil.write_with(dest, lambda t: write(t, b"two"))     # replaces the old directory, leaves no temp
    assert (dest / "Data" / "weight.bin").read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == [dest.name]
    second = fsutil.sha256_file(dest)
    fsutil.write_with(dest, lambda t: write(t, b"two", "renamed.bin"))
    assert len({first, second, fsutil.sha256_file(dest)}) == 3
