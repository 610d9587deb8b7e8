"""Cache keys know what they depend on (pipeline/deps.py): every project module the code imports,
transitively, and the versions of the libraries it imports. A changed version string or an edited helper
module changes the key of each stage that uses it, so the stage is redone."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import models
from pipeline import deps

ROOT = deps.ROOT


def test_closure_follows_project_imports_and_names_libraries():
    fs = deps.files([ROOT / "export" / "coreml_paths.py"])
    assert ROOT / "pipeline" / "filecheck" / "coreml.py" in fs       # not only export.* modules
    assert ROOT / "export" / "executorch_paths.py" in fs
    assert ROOT / "pipeline" / "policy.py" in fs                    # filecheck/coreml.py imports the policy
    # ... which an export's key leaves out: it holds no verdict, so a changed bound does not re-export
    assert not deps.JUDGING & set(deps.files([ROOT / "export" / "coreml_paths.py"], judging=False))
    libs = deps.libraries([ROOT / "export" / "coreml_paths.py"])
    assert {"coremltools", "executorch", "torch"} <= set(libs), libs
    assert not {"json", "os", "pipeline", "export"} & set(libs)
    # a package module named like the library it imports is not its own import (`import coreai` in
    # pipeline/filecheck/coreai.py is coreai-core); a script imported by its bare name is a file
    assert deps.libraries([ROOT / "pipeline" / "filecheck" / "coreai.py"]) == ("coreai-core",)
    assert ROOT / "device_tests" / "device.py" in deps.files([ROOT / "pipeline" / "bench" / "device.py"])


def test_every_library_the_project_imports_resolves_to_a_distribution():
    """A library whose import name is not its distribution's (tensorflow -> tensorflow-cpu) must be in
    deps.DIST_OF (also an optional one, not installed here), else its version would never change a key."""
    roots = [f for pkg in deps.PACKAGES for f in (ROOT / pkg).rglob("*.py")
             if not any(part.startswith(".") for part in f.relative_to(ROOT).parts)]   # not device_tests/.device/'s guest sysroot
    modules = deps._closure(roots, True)[1]
    assert {"torch", "tensorflow", "executorch", "ai_edge_litert", "numpy"} <= modules
    missing = [m for m in sorted(modules) if m not in deps.DIST_OF and deps.versions([deps.dist(m)])[0].endswith("==none")]
    assert not missing, f"imports with no installed distribution of that name (add to deps.DIST_OF): {missing}"


def test_a_version_change_changes_the_key(monkeypatch):
    roots = [ROOT / "pipeline" / "train.py", models.source_file("digits_cnn")]
    before = deps.key(roots)
    real = deps._version.__wrapped__

    def bumped(d, site):
        return "99.0" if d == "torch" else real(d, site)
    monkeypatch.setattr(deps, "_version", bumped)
    assert deps.key(roots) != before
    monkeypatch.undo()
    assert deps.key(roots) == before


def test_an_imported_helper_edit_changes_the_key(tmp_path, monkeypatch):
    """A helper two imports away (models/layers.py via a model module) keys the model's training."""
    pkg = tmp_path / "models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text("def block():\n    return 1\n")
    (pkg / "mid.py").write_text("from models.layers import block\n")
    (pkg / "net.py").write_text("def build():\n    from models import mid\n    import numpy\n")
    monkeypatch.setattr(deps, "ROOT", tmp_path)
    assert pkg / "layers.py" in deps.files([pkg / "net.py"])
    before = deps.key([pkg / "net.py"])
    (pkg / "layers.py").write_text("def block():\n    return 2\n")
    assert deps.key([pkg / "net.py"]) != before


def test_train_and_export_keys_change_with_a_library_version(monkeypatch):
    """The real stage keys: bumping the pinned torch reruns training, hence every export of the model."""
    from export import registry
    from export.run import export_key
    from pipeline.train import cache_key
    spec = models.get("digits_cnn")
    p = registry.get("tflite_int8")
    t0, e0 = cache_key(spec), export_key(spec, p, "w")
    real = deps._version.__wrapped__
    monkeypatch.setattr(deps, "_version", lambda d, site: "0.0.1" if d.startswith("tensorflow") else real(d, site))
    assert cache_key(spec) != t0 and export_key(spec, p, "w") != e0


@pytest.mark.parametrize("lib", ["coreai-core", "coreai-torch", "coreai-opt"])
def test_a_core_ai_export_key_has_the_core_ai_versions(lib, monkeypatch):
    """Every Core AI path's export key changes with each library of the stack it calls: coreai-torch
    converts, coreai-opt compresses, coreai-core writes and checks the asset (imported by
    pipeline/filecheck/coreai.py, whose name is the library's: not a neighbour module)."""
    from export import registry
    from export.run import export_key
    spec = models.get("digits_cnn")
    names = [n for n in registry.all_paths() if n.startswith("coreai_")]
    assert {"coreai_fp32", "coreai_w8", "coreai_w4", "coreai_pal4"} <= set(names)
    before = {n: export_key(spec, registry.get(n), "w") for n in names}
    real = deps._version.__wrapped__

    def bumped(d, site):
        return "99.0" if d.lower().replace("_", "-") == lib else real(d, site)
    monkeypatch.setattr(deps, "_version", bumped)
    assert all(export_key(spec, registry.get(n), "w") != before[n] for n in names)


def test_weights_hash_of_unreadable_training_is_an_error(tmp_path):
    """A cache must miss on a read error, never match on an empty hash."""
    from export.run import weights_hash
    spec = models.get("digits_cnn")
    with pytest.raises(OSError):
        weights_hash(tmp_path, spec)


def test_a_policy_edit_rejudges_training_and_exports_without_redoing_them(monkeypatch):
    """Training and exports hold no verdict: the policy is not in their keys, and the train record is
    judged by today's bound when it is read. The bench caches figures computed with the policy (top-1
    on decisive samples): its key has it."""
    from export import registry
    from export.run import export_key
    from pipeline.bench.harness import code_key
    from pipeline.schema import Record
    from pipeline.train import cache_key, judged
    spec, p = models.get("digits_cnn"), registry.get("tflite_int8")
    before = cache_key(spec), export_key(spec, p, "w"), code_key("litert")
    real = deps._digest.__wrapped__
    monkeypatch.setattr(deps, "_digest", lambda f, mtime: real(f, mtime) + ("edited" if f.name == "policy.py" else ""))
    after = cache_key(spec), export_key(spec, p, "w"), code_key("litert")
    assert after[:2] == before[:2] and after[2] != before[2]
    rec = Record(kind="train", model="digits_cnn", status="ok", framework="both",
                 metrics={"transfer_max_abs_diff": 2 * spec.tolerances.transfer_atol})
    assert judged(rec).status == "failed" and "weight transfer max abs diff" in judged(rec).error
    assert judged(Record(kind="train", model="digits_cnn", status="failed", error="x", framework="both",
                         metrics={"transfer_max_abs_diff": 0.0})).status == "ok"
