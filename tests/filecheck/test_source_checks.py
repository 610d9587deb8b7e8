"""The .pt2 and SavedModel pre-checks (pipeline/filecheck/pt2.py, savedmodel.py) accept what the frameworks
write for normal models: the zoo's PyTorch twins (torch.export.save) and Keras twins (Model.export and
tf.saved_model.save), dynamic shapes and control flow included. The hostile cases are in
tests/package/test_hostile_inputs.py."""
from __future__ import annotations

import pytest

import models
from pipeline.filecheck import pt2, savedmodel, tf_ops


def _export_both(name, tmp_path):
    import keras
    import torch
    spec = models.get(name)
    net = spec.build_torch().eval()
    x = torch.zeros((1, *spec.input_shape))
    torch.export.save(torch.export.export(net, (x,)), tmp_path / f"{name}.pt2")
    pt2.check(tmp_path / f"{name}.pt2")
    km = spec.build_keras()
    km.export(str(tmp_path / "export"), verbose=False)
    savedmodel.check(tmp_path / "export")
    import tensorflow as tf
    tf.saved_model.save(km, str(tmp_path / "saved"))
    savedmodel.check(tmp_path / "saved")
    keras.backend.clear_session()


def test_digits_twins_pass(tmp_path):
    _export_both("digits_cnn", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", models.names("all"))
def test_every_zoo_twin_passes(name, tmp_path):
    _export_both(name, tmp_path)


def test_dynamic_shapes_and_control_flow_pass(tmp_path):
    import torch

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(8, 4)

        def forward(self, x, y):
            z = self.lin(x).relu() + y[: x.shape[0]].sum()
            return torch.cond(z.sum() > 0, lambda a: a * 2, lambda a: a - 1, (z,))

    b, n = torch.export.Dim("b", min=2, max=64), torch.export.Dim("n", min=5)
    ep = torch.export.export(M(), (torch.randn(4, 8), torch.randn(10, 4)), dynamic_shapes={"x": {0: b}, "y": {0: n}})
    torch.export.save(ep, tmp_path / "dyn.pt2")
    pt2.check(tmp_path / "dyn.pt2")       # symbolic sizes, a guard comparing two inputs, torch.cond


def test_allow_list_names_registered_ops_only():
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api
    lst = op_def_pb2.OpList()
    lst.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    registered = {o.name for o in lst.op}
    assert tf_ops.ALLOWED <= registered, sorted(tf_ops.ALLOWED - registered)
    # TF calls these stateless; they touch files or run Python: never allowed
    for op in ("ReadFile", "MatchingFiles", "ImmutableConst", "PyFuncStateless", "DecodeProtoV2", "WriteFile"):
        assert op not in tf_ops.ALLOWED and tf_ops.why_refused(op) != "not on the allow-list of pure ops", op
