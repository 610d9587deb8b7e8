"""The registries are complete: every export path module, model module and runtime adapter in the tree
is registered, every registered path has a runtime (or runs elsewhere, a status of the policy's family)
and a parity bound for its quantization. A file someone forgot to register fails here, not silently."""
from __future__ import annotations

import ast
from pathlib import Path

import models
from export import registry
from pipeline import parity, runtimes

ROOT = Path(__file__).resolve().parents[2]


def _assigns(f: Path, name: str) -> bool:
    """The module assigns `name` at its top level (read, not imported: nothing heavy loads)."""
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
               for n in ast.parse(f.read_text()).body)


def test_every_paths_module_is_imported_and_registers_a_path():
    paths = registry.all_paths()
    files = sorted((ROOT / "export").glob("*_paths.py"))
    assert files and registry.path_modules() == [f"export.{f.stem}" for f in files]
    modules = {p.fn.__module__ for p in paths.values()}
    assert modules == set(registry.path_modules()), "a *_paths.py module that registers no path, or a path " \
        f"registered from elsewhere: {modules ^ set(registry.path_modules())}"


def test_every_model_module_is_registered():
    defined = {f"models.{f.stem}" for f in (ROOT / "models").glob("*.py") if _assigns(f, "SPEC")}
    assert defined == set(models.REGISTRY.values()), \
        f"model modules (defining SPEC) not in models.REGISTRY: {sorted(defined - set(models.REGISTRY.values()))}; " \
        f"registered without a module: {sorted(set(models.REGISTRY.values()) - defined)}"
    for name in models.REGISTRY:
        assert models.get(name).name == name


def test_every_runtime_adapter_is_registered():
    defined = {f"pipeline.runtimes.{f.stem}" for f in (ROOT / "pipeline" / "runtimes").glob("*.py")
               if _assigns(f, "ADAPTER")}
    assert defined == set(runtimes.REGISTRY.values()), defined ^ set(runtimes.REGISTRY.values())


def test_every_path_has_a_runtime_and_a_bound():
    formats_elsewhere = {fmt for e in parity.ELSEWHERE for fmt in e.formats}
    for p in registry.all_paths().values():
        assert p.runtimes or p.format in formats_elsewhere, f"{p.name}: no runtime reads .{p.format}"
        assert p.quantization in parity.QUANTIZATIONS, f"{p.name}: quantization {p.quantization!r} unknown"
        # a generative path is judged by the generation bench's bounds (issue 26), a classic one by DEFAULTS
        assert "generation" in p.tasks or p.quantization in parity.DEFAULTS, \
            f"{p.name}: quantization {p.quantization!r} has no parity bound in pipeline/policy.py"
        for src in p.sources:
            assert src in ("torch", "keras", "keras_tw"), (p.name, src)


def test_a_new_paths_module_is_found(tmp_path, monkeypatch):
    """all_paths finds `export/*_paths.py` by name: a new module needs no line in the registry."""
    (tmp_path / "export").mkdir()
    for f in ("registry.py", "__init__.py"):
        (tmp_path / "export" / f).write_text((ROOT / "export" / f).read_text())
    (tmp_path / "export" / "vulkan_paths.py").write_text("")
    monkeypatch.setattr(registry, "__file__", str(tmp_path / "export" / "registry.py"))
    assert "export.vulkan_paths" in registry.path_modules()
