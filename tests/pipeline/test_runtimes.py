"""The runtime adapters' one interface (pipeline/runtimes/base.py): defaults for bind/resize, and what
the bench records about the timed call follows from whether an adapter binds its inputs."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline import runtimes
from pipeline.runtimes.base import Runtime
from tests.conftest import ROOT

DATA = ROOT / "pipeline" / "bench" / "data"


@pytest.mark.parametrize("name", runtimes.names())
def test_every_adapter_is_a_runtime_and_says_what_it_times(name):
    a = runtimes.get(name)
    assert isinstance(a, Runtime) and a.FORMATS and a.INSTALL_HINT
    binds = type(a).bind is not Runtime.bind
    assert (a.TIMED_CALL != "run()") == binds, f"{name}: TIMED_CALL {a.TIMED_CALL!r} but binds={binds}"


def test_default_bind_runs_and_default_resize_leaves_the_model_alone():
    a = runtimes.get("onnxruntime")           # an adapter with neither of its own
    if not a.available():
        pytest.skip("onnxruntime not installed")
    h = a.load(DATA / "trivial.onnx", 1)
    x = [np.array([2.0], np.float32)]
    a.resize(h, [[1]], "trivial.onnx")
    (y,) = a.bind(h, x)()
    np.testing.assert_array_equal(y, a.run(h, x)[0])
    assert a.TIMED_CALL == "run()"


def test_tflite_bind_times_invoke_with_inputs_set_once():
    a = runtimes.get("litert")
    h = a.load(DATA / "trivial.tflite", 1)
    call = a.bind(h, [np.array([2.0], np.float32)])
    call()
    out = h.get_tensor(h.get_output_details()[0]["index"])
    np.testing.assert_allclose(out.astype(np.float32).ravel(), a.run(h, [np.array([2.0], np.float32)])[0].ravel())
