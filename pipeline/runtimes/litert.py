"""LiteRT (ai-edge-litert), the successor of tflite-runtime: XNNPACK is applied by default."""
from __future__ import annotations

from pipeline.runtimes._tflite_common import TFLiteInterpreter


class LiteRT(TFLiteInterpreter):
    MODULE = "ai_edge_litert.interpreter"
    INSTALL_HINT = "pip install ai-edge-litert==2.3.0 (make setup)"

    def interpreter_class(self):
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("ai-edge-litert")


ADAPTER = LiteRT()
