"""Every registered model (every tier): both twins build, shapes and parameter counts agree, and the weight transfer
of an untrained (seeded, norm layers randomised) torch model reproduces it in Keras. No training."""
from __future__ import annotations

import os

import numpy as np
import pytest

import models

N_INPUTS = 3


def _randomise_norms(model, seed: int) -> None:
    """Fresh norm layers are identities (mean 0, var 1, scale 1, shift 0): give them values so the
    transfer of every tensor (and the BN/LN epsilon) is actually exercised."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))


# the decoder LMs (task "generation") have their own twin checks: tests/models/test_lm.py
CLASSIC = [n for n in models.names("all") if models.get(n).task != "generation"]


@pytest.fixture(scope="module", params=CLASSIC)
def twins(request):
    import keras
    import torch
    spec = models.get(request.param)
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    tmodel = spec.build_torch().eval()
    kmodel = spec.build_keras()
    return spec, tmodel, kmodel


def _inputs(spec, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (N_INPUTS, *spec.input_shape)).astype(np.float32)


def test_output_shapes(twins):
    import torch
    spec, tmodel, kmodel = twins
    x = _inputs(spec)
    with torch.no_grad():
        t_out = tmodel(torch.from_numpy(x[:1])).numpy()
    k_out = np.asarray(kmodel(spec.to_keras(x[:1]), training=False))
    assert t_out.shape == (1, spec.num_outputs), f"{spec.name}: torch output {t_out.shape}"
    assert k_out.shape == (1, spec.num_outputs), f"{spec.name}: keras output {k_out.shape}"
    assert tuple(kmodel.inputs[0].shape) == (1, *spec.to_keras(x[:1]).shape[1:]), \
        f"{spec.name}: Keras twin input {kmodel.inputs[0].shape} is not batch 1 of the data layout"


def test_parameter_counts(twins):
    import torch
    spec, tmodel, kmodel = twins
    t_params = sum(p.numel() for p in tmodel.parameters())
    t_stats = sum(b.numel() for n, b in tmodel.named_buffers()
                  if n.endswith(("running_mean", "running_var")))
    k_trainable = sum(int(np.prod(w.shape)) for w in kmodel.trainable_weights)
    assert k_trainable == t_params, \
        f"{spec.name}: Keras trainable params {k_trainable} != torch params {t_params} " \
        f"(diff {k_trainable - t_params})"
    assert kmodel.count_params() == t_params + t_stats, \
        f"{spec.name}: Keras params {kmodel.count_params()} != torch params+BN stats " \
        f"{t_params + t_stats}"
    assert isinstance(tmodel, torch.nn.Module)


def test_untrained_transfer(twins):
    import torch
    spec, tmodel, kmodel = twins
    _randomise_norms(tmodel, seed=1)
    transferred = spec.transfer(tmodel, kmodel)
    assert transferred, f"{spec.name}: nothing transferred"
    x = _inputs(spec, seed=2)
    with torch.no_grad():
        t_out = tmodel(torch.from_numpy(x)).numpy()
    k_out = np.concatenate([np.asarray(kmodel(spec.to_keras(x[i:i + 1]), training=False))
                            for i in range(len(x))])
    diff = float(np.abs(t_out - k_out).max())
    scale = float(np.abs(t_out).max())
    assert diff <= spec.tolerances.transfer_atol, \
        f"{spec.name}: transfer max abs diff {diff:.3g} > {spec.tolerances.transfer_atol} " \
        f"(output max abs {scale:.3g})"


@pytest.mark.skipif(not os.environ.get("MOBILEBENCH_SLOW_TESTS"),
                    reason="generates every dataset (minutes); set MOBILEBENCH_SLOW_TESTS=1")
@pytest.mark.parametrize("name", CLASSIC)
def test_dataset_contract(name):
    """The generated data fits the model: layout, dtype, labels; and is deterministic per seed."""
    spec = models.get(name)
    data = spec.load_data(spec.train.seed)
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        assert x.shape[1:] == spec.input_shape, f"{name}: {split} samples {x.shape[1:]} != {spec.input_shape}"
        assert np.isfinite(x).all(), f"{name}: {split} has {(~np.isfinite(x)).sum()} non-finite values"
        if spec.task == "classification":
            assert y.min() >= 0 and y.max() < spec.num_outputs, f"{name}: {split} labels {y.min()}..{y.max()}"
    if spec.task == "reconstruction":
        assert int(np.prod(spec.input_shape)) == spec.num_outputs, f"{name}: num_outputs != features"
    again = spec.load_data(spec.train.seed)
    assert np.array_equal(again.x_test, data.x_test), \
        f"{name}: load_data is not deterministic (max diff {np.abs(again.x_test - data.x_test).max():.3g})"
