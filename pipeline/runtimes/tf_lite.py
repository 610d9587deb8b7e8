"""The TFLite interpreter inside a tensorflow-cpu wheel (`tf.lite.Interpreter`): the older TFLite
releases (2.12, 2.13, 2.15, 2.16) that shipped no standalone interpreter wheel for Python 3.11.

Not in the bench's REGISTRY (the bench measures the runtimes an app ships, LiteRT and tflite-runtime);
the version ladder (`pipeline/compat/`) runs it in a tensorflow-cpu environment of its own.
"""
from __future__ import annotations

from pipeline.runtimes._tflite_common import TFLiteInterpreter


class TFLite(TFLiteInterpreter):
    MODULE = "tensorflow"
    INSTALL_HINT = "a tensorflow-cpu environment of the version ladder (python -m pipeline compat --ladder full)"

    def interpreter_class(self):
        import tensorflow as tf
        return tf.lite.Interpreter

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("tensorflow-cpu")


ADAPTER = TFLite()
