"""The version ladder's adapter for the TFLite interpreter inside a tensorflow-cpu wheel
(`tf.lite.Interpreter`): the older TFLite releases (2.12, 2.13, 2.15, 2.16) that shipped no standalone
interpreter wheel for Python 3.11. The same adapter as the bench's two TFLite interpreters
(`pipeline/runtimes/_tflite_common.py`), with TensorFlow's Interpreter class.

It lives here, named by the ladder's tensorflow-cpu rungs (`ladder.py`), not in `pipeline/runtimes/`:
every adapter there is a bench column (`runtimes.for_format`), and the bench measures the runtimes an
app ships (LiteRT, tflite-runtime), not TensorFlow's own interpreter.
"""
from __future__ import annotations

from pipeline.runtimes._tflite_common import TFLiteInterpreter


class TFLite(TFLiteInterpreter):
    MODULE = "tensorflow"
    INSTALL_HINT = "a tensorflow-cpu environment of the version ladder (python -m pipeline compat --ladder full)"
    FORMATS = ("tflite",)

    def interpreter_class(self):
        import tensorflow as tf
        return tf.lite.Interpreter

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("tensorflow-cpu")


ADAPTER = TFLite()
