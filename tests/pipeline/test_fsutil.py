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
