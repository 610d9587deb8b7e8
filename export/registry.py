"""Export paths: one function registered under a name. The driver (`export/run.py`) does the rest:
timing, atomic write, the record, and turning any exception into a `failed` record.

A path function takes an `ExportContext` and writes `ctx.out` (a temporary file that becomes the
artifact only if the function returns). It returns a dict of facts for the record's `info`
(delegation summary, operator list, warnings). Raise `Unsupported` for what the toolchain cannot do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.spec import ModelSpec

FRAMEWORK_OF_SOURCE = {"torch": "pytorch", "keras": "tensorflow", "keras_tw": "tensorflow"}


class Unsupported(Exception):
    """The toolchain cannot do this (a finding, recorded as `unsupported`, not a crash)."""


@dataclass(frozen=True)
class ExportPath:
    name: str
    fn: Callable[["ExportContext"], dict]
    input_kind: str          # "torch" (a torch.nn.Module) or "keras" (a keras.Model)
    format: str              # tflite | pte | ptl | onnx
    quantization: str        # fp32 | fp16 | dynamic_int8 | int8
    runtimes: tuple[str, ...]  # runtime adapters that run this artifact on a device
    description: str = ""
    only_sources: tuple[str, ...] = ()   # () = every twin of input_kind

    @property
    def sources(self) -> tuple[str, ...]:
        """Trained twins this path starts from; Keras paths run on the native and the transfer twin
        unless the path names its twins (the transfer twin exists to compare the same weights across
        stacks, which fp32 and int8 do; its fp16/dynamic-range copies cost export and bench time)."""
        if self.only_sources:
            return self.only_sources
        return ("torch",) if self.input_kind == "torch" else ("keras", "keras_tw")


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


def as_inputs(x) -> tuple:
    """`example` as a tuple of arrays: single-input models pass one array, multi-input a tuple."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def calib_samples(calib):
    """Batch-1 calibration samples, each a list with one array per model input."""
    arrays = as_inputs(calib)
    for i in range(len(arrays[0])):
        yield [a[i:i + 1] for a in arrays]


PATHS: dict[str, ExportPath] = {}


def register(name: str, *, input_kind: str, format: str, quantization: str,
             runtimes: tuple[str, ...], description: str = "", sources: tuple[str, ...] = ()):
    def deco(fn):
        if name in PATHS:
            raise ValueError(f"export path {name!r} registered twice")
        PATHS[name] = ExportPath(name, fn, input_kind, format, quantization, runtimes,
                                 description or (fn.__doc__ or "").strip().splitlines()[0], sources)
        return fn
    return deco


def all_paths() -> dict[str, ExportPath]:
    # importing the modules registers their paths
    from export import (executorch_paths, litert_torch_paths, onnx_paths, tflite_paths,  # noqa: F401
                        torchscript_paths)
    return PATHS


def get(name: str) -> ExportPath:
    paths = all_paths()
    if name not in paths:
        raise KeyError(f"unknown export path {name!r}; valid paths: {', '.join(paths)}")
    return paths[name]


def artifact_stem(model: str, source: str, path: str) -> str:
    """Artifact names come from the config, never typed by hand."""
    return f"{source}__{path}"


def artifact_file(artifacts: Path, model: str, source: str, p: ExportPath) -> Path:
    return artifacts / model / f"{artifact_stem(model, source, p.name)}.{p.format}"
