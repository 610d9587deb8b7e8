"""The old tflite-runtime 2.14 interpreter, as an app that ships an old runtime would have it.

It cannot run under numpy 2, so it lives in its own `.venv-tflite-runtime` (numpy<2, made by
`make setup`); the benchmark runs its worker with that venv's python (see `PYTHON` below).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.runtimes import _tflite_common as common

FORMATS = ("tflite",)
PYTHON = Path(__file__).resolve().parents[2] / ".venv-tflite-runtime" / "bin" / "python"
INSTALL_HINT = "make setup-tflite-runtime (creates .venv-tflite-runtime with tflite-runtime==2.14.0, numpy<2)"


def available() -> bool:
    return PYTHON.exists()


def load(path, threads: int = 1):
    from tflite_runtime.interpreter import Interpreter
    return common.load(Interpreter, path, threads)


def version() -> str:
    from importlib.metadata import version as v
    return v("tflite-runtime")


run = common.run
bind = common.bind
resize = common.resize
describe = common.describe
