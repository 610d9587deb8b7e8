"""Core ML through coremltools (`MLModel.predict`): runs only where Apple's Core ML framework exists.

On Linux coremltools reads the package but has no framework to compile or run it (`load` fails with
"Model prediction is only supported on macOS ..."), so the bench starts no worker for this adapter
there (`cannot_run_here`) and records `apple_only` (`parity.runs_elsewhere`, the policy's family). On macOS
this adapter runs the model on the CPU only (the host has no phone's Neural Engine to stand in for); not verified on a Mac here.
"""
from __future__ import annotations

import numpy as np

from pipeline.runtimes.base import Runtime


def _inputs(model) -> list[dict]:
    return [_spec(f) for f in model.get_spec().description.input]


def _spec(f) -> dict:
    a = f.type.multiArrayType
    dtype = {65568: "float32", 65552: "float16", 131104: "int32"}.get(a.dataType, "float32")
    return {"name": f.name, "shape": [int(d) for d in a.shape], "dtype": dtype}


def _zeros(model) -> dict:
    return {s["name"]: np.zeros(s["shape"], s["dtype"]) for s in _inputs(model)}


class CoreML(Runtime):
    FORMATS = ("mlpackage",)
    INSTALL_HINT = "pip install coremltools==9.0 (make setup); running needs macOS"

    def available(self) -> bool:
        # found, not imported: importing coremltools pulls in TensorFlow and torch (the bench parent asks this)
        import importlib.util
        return importlib.util.find_spec("coremltools") is not None

    def cannot_run_here(self) -> str:
        # coremltools imports TensorFlow and torch (~20 s of a bench) only to say it cannot predict here
        from pipeline.policy import elsewhere
        return "" if elsewhere("apple_only").host_runs() else \
            "not run: coremltools predicts only through Apple's Core ML framework, which this host lacks"

    def load(self, path, threads: int = 1):
        import coremltools as ct
        model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        if model.__proxy__ is None:
            # coremltools parsed the spec but could not hand it to Core ML: let it say why, in its own words
            model.predict(_zeros(model))
        return model

    def run(self, model, inputs: list) -> list:
        specs = _inputs(model)
        if len(inputs) != len(specs):
            raise ValueError(f"model takes {len(specs)} inputs, got {len(inputs)}")
        feed = {}
        for x, s in zip(inputs, specs):
            if list(x.shape) != s["shape"]:
                raise ValueError(f"input {s['name']!r}: shape {tuple(x.shape)} does not fit the model's "
                                 f"{tuple(s['shape'])}")
            feed[s["name"]] = np.ascontiguousarray(x, dtype=s["dtype"])
        out = model.predict(feed)
        return [np.asarray(out[f.name], np.float32) for f in model.get_spec().description.output]

    def describe(self, model) -> dict:
        spec = model.get_spec().description
        return {"inputs": [_spec(f) for f in spec.input], "outputs": [_spec(f) for f in spec.output]}

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("coremltools")


ADAPTER = CoreML()
