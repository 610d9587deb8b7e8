"""Export paths: one function registered under a name. The driver (`export/run.py`) does the rest:
timing, atomic write, the record, and turning any exception into a `failed` record.

A path function takes an `ExportContext` and writes `ctx.out` (a temporary file, or directory, that becomes the
artifact only if the function returns). It returns a dict of facts for the record's `info`
(delegation summary, operator list, warnings). Raise `Unsupported` for what the toolchain cannot do.

A path declares the model tasks it exports (`tasks`): the classic paths take one input batch and give
one output (classification, reconstruction, detection); the generative paths (`export/llm_*.py`) take a
decoder LM and write prefill/decode entry points with a KV cache. `paths_for(task)` is what the drivers
iterate, so no classic path ever tries an LM, and no generative path a classifier.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.spec import ModelSpec


CLASSIC_TASKS = ("classification", "reconstruction", "detection")
GENERATIVE_TASKS = ("generation",)


class Unsupported(Exception):
    """The toolchain cannot do this (a finding, recorded as `unsupported`, not a crash)."""


@dataclass(frozen=True)
class ExportPath:
    name: str
    fn: Callable[["ExportContext"], dict]
    input_kind: str          # "torch" (a torch.nn.Module) or "keras" (a keras.Model)
    format: str              # tflite | pte | ptl | onnx | mlpackage (a directory)
    quantization: str        # fp32 | fp16 | dynamic_int8 | int8 | int8_weights (weights only, fp16 compute)
    description: str = ""
    only_sources: tuple[str, ...] = ()   # () = every twin of input_kind
    tasks: tuple[str, ...] = CLASSIC_TASKS   # model tasks (models/spec.py TASKS) this path exports

    @property
    def sources(self) -> tuple[str, ...]:
        """Trained twins this path starts from; Keras paths run on the native and the transfer twin
        unless the path names its twins (the transfer twin exists to compare the same weights across
        stacks, which fp32 and int8 do; its fp16/dynamic-range copies cost export and bench time)."""
        if self.only_sources:
            return self.only_sources
        return ("torch",) if self.input_kind == "torch" else ("keras", "keras_tw")

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Runtime adapters that read this path's format (each adapter declares its FORMATS)."""
        from pipeline import runtimes
        return tuple(runtimes.for_format(self.format))

    def artifact(self, model: str, source: str):
        from pipeline.artifact import ArtifactId
        return ArtifactId(model, source, self.name)


@dataclass
class ExportContext:
    spec: ModelSpec
    source: str
    model: Any                # torch.nn.Module or keras.Model of the `source` twin
    example: Any              # one batch-1 input in the model's own layout (or a tuple: one per input)
    calib: Any                # calibration/representative samples, same layout (or a tuple per input)
    out: Path                 # where to write the artifact (temporary; renamed on success)
    work_dir: Path            # scratch space for sidecar files (etrecord, saved models)
    info: dict = field(default_factory=dict)
    dynamic_shapes: Any = None  # torch.export dynamic_shapes (torch paths); Keras models carry None dims
    # what the paths of one (model, twin) share within one worker: `export_model` hands every path of
    # that twin the same dict (e.g. the one torch.export'ed program); a lone context gets its own
    shared: dict = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)   # phase -> seconds, see `phase`
    etrecord: Path | None = None  # a .pte path writes its lowering's ETRecord here (`export --etrecord`)

    @contextmanager
    def phase(self, name: str):
        """Time one phase of the path (export, quantize, lower, serialize, convert, ...): the record
        carries it as `time_<name>_s` (the project-wide name of a time metric)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


def as_inputs(x) -> tuple:
    """`example` as a tuple of arrays: single-input models pass one array, multi-input a tuple."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def calib_samples(calib):
    """Batch-1 calibration samples, each a list with one array per model input."""
    arrays = as_inputs(calib)
    for i in range(len(arrays[0])):
        yield [a[i:i + 1] for a in arrays]


PATHS: dict[str, ExportPath] = {}


def register(name: str, *, input_kind: str, format: str, quantization: str, description: str = "",
             sources: tuple[str, ...] = (), tasks: tuple[str, ...] = CLASSIC_TASKS):
    def deco(fn):
        if name in PATHS:
            raise ValueError(f"export path {name!r} registered twice")
        PATHS[name] = ExportPath(name, fn, input_kind, format, quantization,
                                 description or (fn.__doc__ or "").strip().splitlines()[0], sources, tasks)
        return fn
    return deco


def path_modules() -> list[str]:
    """Every `export/*_paths.py` module, by file name: a new one is found, never forgotten."""
    return [f"export.{f.stem}" for f in sorted(Path(__file__).parent.glob("*_paths.py"))]


def all_paths() -> dict[str, ExportPath]:
    """Every registered path. Importing the path modules registers them (on the first call only: the
    modules import their toolchains lazily, inside the path functions)."""
    import importlib
    for m in path_modules():
        importlib.import_module(m)
    return PATHS


def paths_for(task: str) -> dict[str, ExportPath]:
    """The registered paths that export models of this task (in registration order)."""
    return {n: p for n, p in all_paths().items() if task in p.tasks}


def get(name: str) -> ExportPath:
    paths = all_paths()
    if name not in paths:
        raise KeyError(f"unknown export path {name!r}; valid paths: {', '.join(paths)}")
    return paths[name]


def fp32_sibling(name: str) -> str | None:
    """The fp32 path a reduced-precision path is judged against: same input kind and format, the
    longest shared name prefix among the fp32 paths (et_xnnpack_int8 -> et_xnnpack_fp32, not
    et_portable_fp32; tflite_dynamic_int8 -> tflite_fp32). None for fp32 paths and unpaired ones.
    The one pairing rule: plots, the int8 section and quant-debug all use it."""
    paths = all_paths()
    p = paths.get(name)
    if p is None or p.quantization == "fp32":
        return None
    cands = [q for q in paths.values() if q.quantization == "fp32" and q.format == p.format
             and q.input_kind == p.input_kind and q.tasks == p.tasks]
    if not cands:
        return None

    def shared(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n
    return max(cands, key=lambda q: (shared(q.name, name), q.name)).name


def code_files(p: ExportPath) -> list[Path]:
    """The export code a path's artifact depends on: its module and every `export/` module it imports,
    transitively (a shared helper such as `pt2e_quantize` changes every path that calls it)."""
    import ast
    import sys
    here = Path(__file__).parent
    todo, seen = [Path(sys.modules[p.fn.__module__].__file__)], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.exists():
            continue
        seen.add(f)
        if f.name == "registry.py":
            continue   # it imports every path module only to register them
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "export":
                mods = [node.module] if node.module != "export" else [f"export.{a.name}" for a in node.names]
                todo += [here / f"{m.split('.', 1)[1]}.py" for m in mods if "." in m]
            elif isinstance(node, ast.Import):
                todo += [here / f"{a.name.split('.', 1)[1]}.py" for a in node.names
                         if a.name.startswith("export.")]
    return sorted(seen)
