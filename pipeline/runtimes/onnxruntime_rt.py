"""ONNX Runtime (CPU execution provider): the reference column beside LiteRT and ExecuTorch.

Its timed call is run() itself (the base's bind): a session takes a feed dict per call."""
from __future__ import annotations

import numpy as np

from pipeline.runtimes.base import Runtime

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8",
           "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


class OnnxRuntime(Runtime):
    FORMATS = ("onnx",)
    MODULE = "onnxruntime"
    INSTALL_HINT = "pip install onnxruntime==1.31.1 (make setup)"

    def load(self, path, threads: int = 1):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(self, sess, inputs: list) -> list:
        specs = sess.get_inputs()
        if len(inputs) != len(specs):
            raise ValueError(f"model takes {len(specs)} inputs, got {len(inputs)}")
        feed = {}
        for x, s in zip(inputs, specs):
            fixed = [d if isinstance(d, int) else -1 for d in s.shape]
            if len(fixed) != x.ndim or any(d != -1 and d != n for d, n in zip(fixed, x.shape)):
                raise ValueError(f"input {s.name!r}: shape {tuple(x.shape)} does not fit the model's {tuple(s.shape)}")
            feed[s.name] = np.ascontiguousarray(x, dtype=_DTYPES.get(s.type, x.dtype))
        return [np.asarray(o, dtype=np.float32) for o in sess.run(None, feed)]

    def describe(self, sess) -> dict:
        return {"inputs": [_spec(a) for a in sess.get_inputs()], "outputs": [_spec(a) for a in sess.get_outputs()]}

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("onnxruntime")


def _spec(a) -> dict:
    return {"name": a.name, "shape": [d if isinstance(d, int) else -1 for d in a.shape],
            "dtype": _DTYPES.get(a.type, a.type)}


ADAPTER = OnnxRuntime()
