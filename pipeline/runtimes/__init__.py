"""Runtime adapters: one small module per runtime with `load`, `run`, `describe`, `available`.

    handle = adapter.load(path, threads)        # may raise; the worker turns that into a record
    outputs = adapter.run(handle, [x, ...])     # float32 numpy in, float32 numpy out
    facts = adapter.describe(handle)            # inputs/outputs specs, operators, delegation

Adapters import only numpy and their runtime, so the benchmark worker can run them in any venv
(the tflite-runtime adapter runs under `.venv-tflite-runtime`, which has numpy<2 and no torch).
"""
from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "litert": "pipeline.runtimes.litert",
    "tflite_runtime": "pipeline.runtimes.tflite_runtime",
    "executorch": "pipeline.runtimes.executorch_rt",
    "lite_interpreter": "pipeline.runtimes.lite_interpreter",
    "onnxruntime": "pipeline.runtimes.onnxruntime_rt",
    "coreml": "pipeline.runtimes.coreml_rt",
}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown runtime {name!r}; valid runtimes: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])


def for_format(fmt: str) -> list[str]:
    """Runtimes that read a file format (by the adapter's own FORMATS), without importing runtimes."""
    return [n for n, m in REGISTRY.items() if fmt in importlib.import_module(m).FORMATS]
