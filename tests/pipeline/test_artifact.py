"""One artifact identity, one reader of export records, one base for stored paths, and registries
that fit together (every export path has a runtime for its format, every runtime format a validator)."""
from __future__ import annotations

from pathlib import Path

import pytest

from export import registry
from pipeline import fsutil, runtimes
from pipeline.artifact import ArtifactId, export_records, read_sidecar, resolve, stored
from pipeline.filecheck.validate import EXTENSIONS


def test_identity_derives_every_name(tmp_path):
    aid = ArtifactId("digits_cnn", "keras", "tflite_int8")
    assert aid.stem == "keras__tflite_int8"
    assert aid.label == "digits_cnn/keras__tflite_int8"
    assert aid.framework == "tensorflow"
    assert aid.file(tmp_path, "tflite") == tmp_path / "digits_cnn" / "keras__tflite_int8.tflite"
    assert aid.sidecar(tmp_path) == tmp_path / "digits_cnn" / "keras__tflite_int8.record.json"
    assert registry.get("tflite_int8").artifact("digits_cnn", "keras") == aid
    assert ArtifactId("my.tflite", "", "user").stem == "user"


def test_stored_paths_resolve_against_the_root_whatever_the_cwd(tmp_path, monkeypatch):
    nested = fsutil.ROOT / ".cache" / "x" / "digits_cnn" / "a.tflite"
    assert stored(nested) == ".cache/x/digits_cnn/a.tflite"
    monkeypatch.chdir(tmp_path)
    assert resolve(stored(nested)) == nested
    outside = tmp_path / "b.pte"
    assert resolve(stored(outside)) == outside.resolve()


def test_export_cache_hits_with_a_nested_artifacts_folder(digits_exports):
    """The suspected bug, reproduced on the old code: with --artifacts inside the tree (here
    .cache/test-artifacts) the sidecar's artifact path was resolved against `artifacts.parent`, a
    wrong folder, so the cache never hit and every run re-exported. Now a second run redoes nothing."""
    from conftest import TEST_ARTIFACTS
    from export.run import export_model
    lines = []
    export_model("digits_cnn", TEST_ARTIFACTS, ["tflite_fp32", "onnx_fp32"], log=lines.append)
    done = [ln for ln in lines if ln.startswith("[export")]
    assert len(done) == 3 and all("up to date" in ln for ln in done), done


def test_one_reader_sees_every_exported_path(digits_exports):
    from conftest import TEST_ARTIFACTS
    recs = export_records(TEST_ARTIFACTS, "digits_cnn")
    assert {(r.source, r.path) for r in recs if r.kind == "export"} >= set(digits_exports)
    assert any(r.kind == "train" for r in recs)
    rec = digits_exports[("torch", "et_xnnpack_int8")]
    sc = read_sidecar(ArtifactId.of(rec).sidecar(TEST_ARTIFACTS))
    assert sc is not None and sc.record.artifact_sha256 == rec.artifact_sha256 and sc.key
    assert resolve(rec.artifact).exists()


def test_export_key_covers_shared_helpers():
    """litert_torch_int8 quantizes with executorch_paths.pt2e_quantize: editing that helper must make its
    records stale, so its cache key hashes that module too; a TFLite path's key does not."""
    files = {f.name for f in registry.code_files(registry.get("litert_torch_int8"))}
    assert {"litert_torch_paths.py", "executorch_paths.py", "registry.py"} <= files
    assert "executorch_paths.py" not in {f.name for f in registry.code_files(registry.get("tflite_fp32"))}


def test_export_key_changes_when_a_shared_helper_changes(monkeypatch):
    import models
    from export import run
    spec, p = models.get("digits_cnn"), registry.get("litert_torch_int8")
    before = run.export_key(spec, p)
    real = fsutil.source_hash
    monkeypatch.setattr(fsutil, "source_hash", lambda files: real(files) + (
        "edited" if any(Path(f).name == "executorch_paths.py" for f in files) else ""))
    assert run.export_key(spec, p) != before


def test_fp32_sibling_is_one_rule():
    assert registry.fp32_sibling("et_xnnpack_int8") == "et_xnnpack_fp32"
    assert registry.fp32_sibling("tflite_int8") == "tflite_fp32"
    assert registry.fp32_sibling("tflite_dynamic_int8") == "tflite_fp32"
    assert registry.fp32_sibling("litert_torch_int8") == "litert_torch_fp32"
    assert registry.fp32_sibling("onnx_int8") == "onnx_fp32"
    assert registry.fp32_sibling("tflite_fp32") is None


@pytest.mark.parametrize("name", list(registry.all_paths()))
def test_every_path_has_a_runtime_for_its_format(name):
    p = registry.get(name)
    assert p.runtimes, f"{name}: no runtime adapter reads .{p.format}"
    for rt in p.runtimes:
        assert p.format in runtimes.get(rt).FORMATS


@pytest.mark.parametrize("rt", runtimes.names())
def test_every_runtime_format_has_a_validator(rt):
    adapter = runtimes.get(rt)
    for fmt in adapter.FORMATS:
        assert fmt in EXTENSIONS.values(), f"{rt} reads .{fmt} but filecheck.validate has no check for it"
        for f in ("load", "run", "describe", "available", "version"):
            assert callable(getattr(adapter, f, None)), f"{rt} has no {f}()"
