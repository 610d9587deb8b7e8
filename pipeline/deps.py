"""What a cached result depends on: the project modules its code imports, transitively, and the versions
of the libraries those modules import. Every cache key (train, export, bench, package parity,
quant-debug, device, probes) takes its code part from here.

    deps.key([Path("pipeline/train.py"), model_file])   # hash of that code and "torch==2.13.0", ...
    deps.files([...])        # the project .py files imported, transitively (module- and function-level)
    deps.libraries([...])    # the distributions those files import: ("keras", "numpy", "torch", ...)
    deps.versions(dists, python)   # ("torch==2.13.0", ...) in that interpreter's environment

Imports are read from the files (ast), never executed. A module loaded by name at run time
(`importlib.import_module(REGISTRY[name])`: models, runtime adapters, export path modules) is not an
import the file shows: the caller names its file as a root.
"""
from __future__ import annotations

import ast
import sys
import threading
from functools import lru_cache
from pathlib import Path

from pipeline import fsutil

ROOT = fsutil.ROOT
PACKAGES = ("pipeline", "export", "models", "probes", "device_tests")     # the project's top-level packages
# folders the project puts on sys.path to import a script by its bare name (bench/device.py: `import device`)
SCRIPT_DIRS = (ROOT / "device_tests",)
# the judging modules (pipeline/policy.py, pipeline/parity.py): a stage whose cached result holds no
# figure computed with their values, and whose verdict is applied after the result is read (training's
# transfer check, export), keys without them (`judging=False`): a changed bound re-judges, it does not
# retrain. A stage that caches metrics computed with them (bench: top-1 on decisive samples; package
# parity: parity.compare) or stores a verdict (device, probes) keys with them, the default.
JUDGING = frozenset({ROOT / "pipeline" / "policy.py", ROOT / "pipeline" / "parity.py"})
# import name -> distribution, where they differ (the rest: the import name is the distribution's)
DIST_OF = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "coreai": ("coreai-core",),
           "tflite_runtime": ("tflite-runtime",), "yaml": ("PyYAML",), "google": ("protobuf",),
           "sklearn": ("scikit-learn",), "PIL": ("pillow",),
           "model_explorer": ("ai-edge-model-explorer",)}     # optional: requirements-explorer.txt


@lru_cache(maxsize=None)
def _imports(f: Path, mtime: float) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """(project files, other top-level modules) one file imports, anywhere in it."""
    del mtime   # part of the cache key only: an edited file is read again
    files, others = set(), set()
    # only a script (a file outside any package) imports its folder's modules by their bare name: inside a
    # package `import coreai` is the library even beside pipeline/filecheck/coreai.py
    script = not (f.parent / "__init__.py").is_file()
    for node in ast.walk(_parse(f)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                files.update(_module_files(name))
            elif near := next((d / f"{top}.py" for d in [f.parent] * script + list(SCRIPT_DIRS)
                               if (d / f"{top}.py").is_file()), None):
                files.add(near)             # a script's neighbour, or a script on SCRIPT_DIRS
            elif top not in sys.stdlib_module_names and top != "__future__":
                others.add(top)
    return tuple(sorted(files)), tuple(sorted(others))


# CPython 3.11.7's AST constructor keeps its recursion depth in state shared by threads (gh-106905, fixed in
# later 3.11 releases): two threads parsing at once raise "AST constructor recursion depth mismatch"
# (the compat ladder keys its releases from a thread pool). One parse at a time.
_PARSE = threading.Lock()


def _parse(f: Path) -> ast.AST:
    text = f.read_text()
    with _PARSE:
        return ast.parse(text, str(f))


def _module_files(name: str) -> list[Path]:
    """The files importing `name` runs: every package __init__ on the way and the module itself (a name
    that is an attribute, not a module, adds only its package's files)."""
    out, parts = [], name.split(".")
    for i in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[:i])
        for f in (base / "__init__.py", base.with_suffix(".py")):
            if f.is_file():
                out.append(f)
    return out


def _closure(roots, judging: bool) -> tuple[set[Path], set[str]]:
    seen, others, todo = set(), set(), [Path(r).resolve() for r in roots]
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        fs, os_ = _imports(f, f.stat().st_mtime)
        others.update(os_)
        todo += [g for g in fs if judging or g not in JUDGING]
    return seen, others


def files(roots, judging: bool = True) -> list[Path]:
    """The roots and every project file they import, transitively (without JUDGING: see there)."""
    return sorted(_closure(roots, judging)[0])


def libraries(roots, judging: bool = True) -> tuple[str, ...]:
    """The distributions the roots' code imports (an import no installed distribution provides, such
    as a runtime in another venv, is named by the import)."""
    return tuple(sorted({dist(m) for m in _closure(roots, judging)[1]}))


@lru_cache(maxsize=None)
def dist(module: str) -> str:
    """The distribution that provides a top-level import name (its own name when none is found)."""
    from importlib.metadata import PackageNotFoundError, version
    for name in (module, *DIST_OF.get(module, ())):
        try:
            version(name)
            return name
        except PackageNotFoundError:
            continue
    return DIST_OF.get(module, (module,))[0]


def versions(dists, python: str | None = None) -> tuple[str, ...]:
    """"dist==version" of each distribution in `python`'s environment (this one by default); a missing
    one is "dist==none" (installing it changes the key)."""
    return tuple(f"{d}=={_version(d, _site(python))}" for d in sorted(set(dists)))


def _site(python: str | None) -> tuple[str, ...] | None:
    """The site-packages of another venv's interpreter (a runtime in its own venv), read without running it."""
    if not python or Path(python) == Path(sys.executable):
        return None
    venv = Path(python).parent.parent        # <venv>/bin/python, not resolved: a venv's python is a link
    return tuple(str(p) for p in sorted(venv.glob("lib/python*/site-packages")))


@lru_cache(maxsize=None)
def _version(d: str, site: tuple[str, ...] | None) -> str:
    from importlib.metadata import PackageNotFoundError, distributions, version
    if site is None:
        try:
            return version(d)
        except PackageNotFoundError:
            return "none"
    norm = d.lower().replace("-", "_")
    for found in distributions(path=list(site)):
        if (found.metadata["Name"] or "").lower().replace("-", "_") == norm:
            return found.version
    return "none"


def key(roots, *, judging: bool = True, python: str | None = None, extra_libs=()) -> str:
    """One hash of the roots' code (every project file they import) and the versions of the libraries it
    imports (plus `extra_libs`), as installed for `python`."""
    fs = files(roots, judging)
    libs = versions({*libraries(roots, judging), *extra_libs}, python)
    return fsutil.sha256_text(*[_digest(f, f.stat().st_mtime) for f in fs], *libs)


@lru_cache(maxsize=None)
def _digest(f: Path, mtime: float) -> str:
    del mtime   # an edited file is hashed again
    return fsutil.sha256_text(str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f), f.read_bytes())
