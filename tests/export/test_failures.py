"""A failing path is a result: recorded with its error's first line, and the others still run."""
from __future__ import annotations

import pytest

from export import registry
from export.run import export_model


def _boom(ctx):
    raise RuntimeError("converter exploded\nsecond line of the traceback")


def _cannot(ctx):
    raise registry.Unsupported("this toolchain has no such op")


@pytest.fixture
def extra_paths(monkeypatch):
    registry.all_paths()
    for name, fn in (("test_boom", _boom), ("test_cannot", _cannot)):
        monkeypatch.setitem(registry.PATHS, name, registry.ExportPath(
            name, fn, "keras", "tflite", "fp32", "test path"))


def test_failed_path_is_recorded_and_run_goes_on(extra_paths, digits_exports, tmp_path):
    from conftest import TEST_ARTIFACTS
    records = export_model("digits_cnn", TEST_ARTIFACTS, ["test_boom", "test_cannot", "tflite_fp32"],
                           force=False, log=lambda m: None)
    by = {(r.source, r.path): r for r in records}
    assert by[("keras", "test_boom")].status == "failed"
    assert by[("keras", "test_boom")].error == "RuntimeError: converter exploded"
    assert by[("keras", "test_cannot")].status == "unsupported"
    assert by[("keras", "test_cannot")].error == "this toolchain has no such op"
    assert by[("keras", "tflite_fp32")].status == "ok"
    # a failed path leaves no artifact behind
    assert not (TEST_ARTIFACTS / "digits_cnn" / "keras__test_boom.tflite").exists()
    for f in (TEST_ARTIFACTS / "digits_cnn").glob("*test_*.record.json"):
        f.unlink()


def test_unknown_path_lists_valid_ones():
    with pytest.raises(KeyError, match="valid paths: .*tflite_int8"):
        registry.get("tflite_int4")
