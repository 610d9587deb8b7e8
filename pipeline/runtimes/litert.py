"""LiteRT (ai-edge-litert), the successor of tflite-runtime: XNNPACK is applied by default."""
from __future__ import annotations

from pipeline.runtimes import _tflite_common as common

FORMATS = ("tflite",)
INSTALL_HINT = "pip install ai-edge-litert==2.3.0 (make setup)"


def available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def load(path, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter
    return common.load(Interpreter, path, threads)


def version() -> str:
    from importlib.metadata import version as v
    return v("ai-edge-litert")


run = common.run
bind = common.bind
resize = common.resize
describe = common.describe
