"""Runtime adapters: one small module per runtime, each with an `ADAPTER` (a `base.Runtime`).

    adapter = runtimes.get("litert")
    handle = adapter.load(path, threads)        # may raise; the worker turns that into a record
    outputs = adapter.run(handle, [x, ...])     # float32 numpy in, float32 numpy out
    call = adapter.bind(handle, [x, ...])       # the timed call (default: run() on those inputs)
    facts = adapter.describe(handle)            # inputs/outputs specs, operators, delegation

Adapters import only numpy and their runtime, so the benchmark worker can run them in any venv
(the tflite-runtime adapter runs under `.venv-tflite-runtime`, which has numpy<2 and no torch).
"""
from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.runtimes.base import Runtime

REGISTRY: dict[str, str] = {
    "litert": "pipeline.runtimes.litert",
    "tflite_runtime": "pipeline.runtimes.tflite_runtime",
    "executorch": "pipeline.runtimes.executorch_rt",
    "lite_interpreter": "pipeline.runtimes.lite_interpreter",
    "onnxruntime": "pipeline.runtimes.onnxruntime_rt",
    "coreml": "pipeline.runtimes.coreml_rt",
    "coreai": "pipeline.runtimes.coreai_rt",
}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> Runtime:
    if name not in REGISTRY:
        raise KeyError(f"unknown runtime {name!r}; valid runtimes: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).ADAPTER


def module_file(name: str) -> Path:
    """The adapter's source file, not imported (a cache key hashes it)."""
    return Path(__file__).parent / f"{REGISTRY[name].rsplit('.', 1)[1]}.py"


def for_format(fmt: str) -> list[str]:
    """Runtimes that read a file format (by the adapter's own FORMATS), without importing runtimes."""
    return [n for n in REGISTRY if fmt in get(n).FORMATS]
