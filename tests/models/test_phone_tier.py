"""The phone-size tier and the pretrained MTCNN nets: tier selection, published sizes, shipped weights,
calibrated/pretrained weights through `pipeline.train`. No phone-size model trains here (the twins'
build + transfer checks of every tier are in test_zoo.py).

    .venv/bin/python -m pytest -q tests/models/test_phone_tier.py
"""
from __future__ import annotations

import dataclasses
import hashlib
import socket

import numpy as np
import pytest

import models
from models import mtcnn
from models.spec import TIERS, WEIGHTS


def _cost(model, input_shape) -> tuple[int, float]:
    """(parameters, MACs) of one batch-1 forward pass: FlopCounterMode FLOPs / 2 (as pipeline/cost.py)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros((1, *input_shape)))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2


def _rel(got: float, want: float) -> float:
    return abs(got - want) / want


# ---- tier selection ------------------------------------------------------------------------------

def test_default_selection_is_the_toy_tier():
    toy, phone = models.names(), models.names("phone")
    assert toy == models.names("toy") == models.select("")
    assert all(models.get(n).tier == "toy" for n in toy)
    assert {"mobilenet_v2_224", "mobilenet_v3_small", "ds_cnn_l", "bert_mini", "mtcnn_pnet", "mtcnn_rnet",
            "mtcnn_onet", "mtcnn_rnet_prelu_rewrite", "mtcnn_onet_prelu_rewrite"} <= set(phone)
    assert not set(toy) & set(phone)
    assert models.names("all") == list(models.REGISTRY)


def test_select_mixes_names_and_tiers_without_repeats():
    sel = models.select("digits_cnn,tier:phone,mtcnn_pnet")
    assert sel[0] == "digits_cnn" and sel[1:] == models.names("phone")
    assert models.select("tier:all") == models.names("all")
    with pytest.raises(KeyError, match="unknown tier 'tablet'"):
        models.select("tier:tablet")
    with pytest.raises(KeyError, match="unknown model 'resnet9000'"):
        models.select("digits_cnn,resnet9000")


def test_every_spec_says_its_tier_and_weights():
    for name in models.names("all"):
        spec = models.get(name)
        assert spec.tier in TIERS and spec.weights in WEIGHTS, name
        if spec.tier == "toy":
            assert spec.weights == "trained", f"{name}: the toy zoo trains its twins"
    with pytest.raises(ValueError, match="tier 'tablet'"):
        dataclasses.replace(models.get("digits_cnn"), tier="tablet")
    with pytest.raises(ValueError, match="weights 'random'"):
        dataclasses.replace(models.get("digits_cnn"), weights="random")


# ---- published sizes (1000-class heads, 224x224) -------------------------------------------------

@pytest.mark.parametrize("name, params, macs", [
    # Sandler et al. 2018: 3.47M weights (3,504,872 counting BN scales/shifts, as torchvision), 300M MACs
    ("mobilenet_v2_224", 3.47e6, 300e6),
    # Howard et al. 2019: 2.54M parameters, 56M MACs (MobileNetV3-Small 1.0)
    ("mobilenet_v3_small", 2.54e6, 56e6),
])
def test_published_size(name, params, macs):
    import importlib
    mod = importlib.import_module(models.REGISTRY[name])
    n, m = _cost(mod.build_torch(num_classes=1000), mod.INPUT)
    assert _rel(n, params) <= 0.02, f"{name}: {n:,} parameters vs published {params:,.0f} ({_rel(n, params):.1%})"
    assert _rel(m, macs) <= 0.02, f"{name}: {m / 1e6:.1f}M MACs vs published {macs / 1e6:.0f}M ({_rel(m, macs):.1%})"


def test_torchvision_counts_exactly():
    """The same architectures as torchvision's builders (parameter counts of its model cards)."""
    from models import mobilenet_v2_224, mobilenet_v3_small
    assert _cost(mobilenet_v2_224.build_torch(num_classes=1000), mobilenet_v2_224.INPUT)[0] == 3_504_872
    assert _cost(mobilenet_v3_small.build_torch(num_classes=1000), mobilenet_v3_small.INPUT)[0] == 2_542_856


def test_ds_cnn_l_matches_hello_edge():
    # Hello Edge (Zhang et al. 2017) DS-CNN-L: 56.9M operations (= 2 x MACs) on 49x10 MFCC
    spec = models.get("ds_cnn_l")
    n, m = _cost(spec.build_torch(), spec.input_shape)
    assert _rel(2 * m, 56.9e6) <= 0.02, f"ds_cnn_l: {2 * m / 1e6:.1f}M ops vs published 56.9M"
    assert 0.38e6 <= n <= 0.5e6, f"ds_cnn_l: {n:,} parameters"


def test_bert_mini_shape():
    spec = models.get("bert_mini")
    n, m = _cost(spec.build_torch(), spec.input_shape)
    layer = 4 * (256 * 256 + 256) + 2 * (256 * 1024) + 1024 + 256 + 2 * 2 * 256  # attn, FFN, 2 LayerNorms
    assert n == 4 * layer + 128 * 256 + 2 * 256 + 256 * 9 + 9, f"bert_mini: {n:,} parameters"
    dense = 128 * 4 * (4 * 256 * 256 + 2 * 256 * 1024)                    # Linear layers, per token
    attention = 4 * 2 * 128 * 128 * 256                                   # q k^T and att v, 4 layers
    assert _rel(m, dense + attention + 256 * 9) <= 0.01, f"bert_mini: {m / 1e6:.1f}M MACs"


# ---- MTCNN: the shipped weights ------------------------------------------------------------------

# sha256 of facenet-pytorch 2.6.0's data/{pnet,rnet,onet}.pt: a different file is a different model
SHIPPED_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test that must run offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("net", sorted(mtcnn.NETS))
def test_mtcnn_loads_the_shipped_weights_offline(net, no_network):
    import torch
    path = mtcnn.weights_file(net)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHIPPED_SHA256[net], f"{path} changed"
    shipped = mtcnn.load_state_dict(net)
    model = mtcnn.build_torch(net)          # load_state_dict(strict=True) inside
    for k, v in model.state_dict().items():
        assert torch.equal(v, shipped[k]), f"{net}.{k} differs from the shipped tensor"
    assert set(model.state_dict()) == set(shipped)


@pytest.mark.parametrize("net", ["pnet", "rnet"])
def test_mtcnn_weights_tell_faces_from_non_faces(net):
    """Real weights, not a random init: generated face-like crops get a high face probability
    (output 1), generated shapes a low one; a random init scores both alike (~0.5)."""
    import torch
    x, y, _, _ = mtcnn.make_dataset(0, 200, 0, mtcnn.NETS[net].size)
    with torch.no_grad():
        p = mtcnn.build_torch(net)(torch.from_numpy(x))[:, 1].numpy()
        r = mtcnn.build_torch(net, pretrained=False)(torch.from_numpy(x))[:, 1].numpy()
    assert p[y == 1].mean() > 0.5 > 0.1 > p[y == 0].mean(), \
        f"{net}: face prob {p[y == 1].mean():.3f} on faces, {p[y == 0].mean():.3f} on non-faces"
    assert abs(r[y == 1].mean() - r[y == 0].mean()) < 0.1


@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_prelu_rewrite_is_the_same_function(net):
    import torch
    size = mtcnn.NETS[net].size
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (4, 3, size, size)).astype(np.float32))
    plain, rewrite = models.get(f"mtcnn_{net}").build_torch(), models.get(f"mtcnn_{net}_prelu_rewrite").build_torch()
    assert not any(isinstance(m, torch.nn.PReLU) for m in rewrite.modules())
    with torch.no_grad():
        diff = float((plain(x) - rewrite(x)).abs().max())
    assert diff <= 1e-6, f"{net}: PReLU rewrite differs by {diff:.3g}"


def test_keras_pool_padding_matches_ceil_mode():
    assert mtcnn._keras_pool_padding(22, 3, 2) == "same"     # rnet pool1: ceil 11, floor 10
    assert mtcnn._keras_pool_padding(9, 3, 2) == "valid"     # rnet pool2: both 4
    with pytest.raises(ValueError):
        mtcnn._keras_pool_padding(10, 5, 3)                  # ceil adds a window 'same' does not


# ---- calibrated and pretrained weights through the pipeline's train stage -------------------------

def test_bn_calibration_is_the_data_mean_in_both_frameworks():
    """After calibration the BN's running mean is the mean of its input over the data (equal batches:
    the cumulative average weights every batch alike), and the layer's momentum is restored."""
    import keras
    import torch
    from models.calibrate import bn_keras, bn_torch
    x = np.random.default_rng(0).normal(3.0, 2.0, (40, 4)).astype(np.float32)
    tm = torch.nn.Sequential(torch.nn.BatchNorm1d(4))
    bn_torch(tm, x, batch_size=10)
    np.testing.assert_allclose(tm[0].running_mean.numpy(), x.mean(0), rtol=1e-5)
    assert tm[0].momentum == 0.1 and not tm.training
    km = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.9)])
    bn_keras(km, x, batch_size=10)
    np.testing.assert_allclose(km.layers[0].moving_mean.numpy(), x.mean(0), rtol=1e-5)
    assert km.layers[0].momentum == 0.9


def test_train_stage_calibrated_and_pretrained(tmp_path):
    """pipeline.train for the two new weights kinds: a calibrated copy of the digits model (cheap) and
    mtcnn_pnet (pretrained: no native Keras twin, the transfer twin carries the real weights)."""
    import json
    from pipeline.train import load_eval, train, train_dir
    calibrated = dataclasses.replace(models.get("digits_cnn"), weights="calibrated")
    rec = train(calibrated, tmp_path, log=lambda m: None)
    assert rec.status == "ok" and rec.info["weights"] == "calibrated" and rec.info["tier"] == "toy"
    assert (train_dir(tmp_path, "digits_cnn") / "keras.weights.h5").exists()

    spec = models.get("mtcnn_pnet")
    rec = train(spec, tmp_path, log=lambda m: None)
    d = train_dir(tmp_path, spec.name)
    assert rec.status == "ok", rec.error
    assert rec.info["weights"] == "pretrained" and rec.info["sources"] == ["torch", "keras_tw"]
    assert rec.metrics["transfer_max_abs_diff"] <= spec.tolerances.transfer_atol
    assert not (d / "keras.weights.h5").exists()
    assert json.loads((d / "meta.json").read_text())["files"] == ["torch.pt", "keras_tw.weights.h5", "eval.npz"]
    ev = load_eval(spec, tmp_path)
    assert "ref_keras" not in ev and ev["ref_torch"].shape == (len(ev["x"]), 6)
    assert not any(k.endswith("accuracy") for k in rec.metrics), "detection: nothing is scored"


def test_export_records_the_missing_keras_twin_as_skipped(tmp_path):
    """A Keras-native path on a pretrained PyTorch model: a `skipped` record that says why."""
    from export.run import export_model
    recs = export_model("mtcnn_pnet", tmp_path, ["tflite_fp16"], log=lambda m: None)
    assert [(r.source, r.status) for r in recs] == [("keras", "skipped")]
    assert "PyTorch only" in recs[0].error


@pytest.mark.slow   # ~10 s of XNNPACK lowering
def test_xnnpack_prelu_after_linear_is_a_recorded_failure_and_the_rewrite_lowers(tmp_path):
    """The finding the MTCNN models exist to show: ExecuTorch's XNNPACK lowering rejects RNet's PReLU
    after a Linear (a `failed` record carrying the root cause), the PReLU rewrite variant lowers."""
    from export.run import export_model
    (plain,) = export_model("mtcnn_rnet", tmp_path, ["et_xnnpack_fp32"], log=lambda m: None)
    assert plain.status == "failed"
    assert "non-NHWC compatible node" in plain.error, plain.error
    (rewrite,) = export_model("mtcnn_rnet_prelu_rewrite", tmp_path, ["et_xnnpack_fp32"], log=lambda m: None)
    assert rewrite.status == "ok", rewrite.error
    # everything but the delegate's output unpacking (getitem) runs in XNNPACK
    assert set(rewrite.info["not_delegated"]) <= {"getitem"}, rewrite.info["not_delegated"]
