"""The old tflite-runtime 2.14 interpreter, as an app that ships an old runtime would have it.

It cannot run under numpy 2, so it lives in its own `.venv-tflite-runtime` (numpy<2, made by
`make setup`); the benchmark runs its worker with that venv's python (see `PYTHON` below).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.runtimes._tflite_common import TFLiteInterpreter

PYTHON = Path(__file__).resolve().parents[2] / ".venv-tflite-runtime" / "bin" / "python"


class TFLiteRuntime(TFLiteInterpreter):
    INSTALL_HINT = "make setup-tflite-runtime (creates .venv-tflite-runtime with tflite-runtime==2.14.0, numpy<2)"

    def python(self) -> str:
        return str(PYTHON)

    def available(self) -> bool:
        return PYTHON.exists()

    def interpreter_class(self):
        from tflite_runtime.interpreter import Interpreter
        return Interpreter

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("tflite-runtime")


ADAPTER = TFLiteRuntime()
