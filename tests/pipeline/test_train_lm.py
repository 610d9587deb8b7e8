"""The generative trainer's two twins take the same update (pipeline/train_lm.py): from the same weights
on the same batch, Keras' `compile_keras` + `train_on_batch` and PyTorch's `torch_updater` use the same
learning rate, clip by the same global gradient norm and keep the same Adam moments. The batch repeats
tokens, as text does: the embedding's gradient is then a tf.IndexedSlices with repeated rows, which
plain Keras Adam squares row by row (global norm and second moment off; see `keras_adam`).

    .venv/bin/python -m pytest -q tests/pipeline/test_train_lm.py
"""
from __future__ import annotations

import numpy as np
import pytest

from models import lm_arch
from models.lm_config import LMConfig
from pipeline import train_lm

CFG = LMConfig(vocab=64, hidden=32, layers=1, heads=4, kv_heads=2, ffn=64, context=16)
TOTAL, LR = 40, 3e-3


def _scaled_torch():
    """The torch twin with every weight but the norms x10: gradients well above Adam's epsilon, global
    norm ~3 (the clip acts)."""
    import torch
    tmodel = lm_arch.build_torch(CFG, 0)
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            if not name.endswith("norm.weight"):
                p.mul_(10)
    return tmodel


def _torch_weight(tmodel, var):
    """The torch parameter a Keras variable was transferred from, and its layout in Keras (Dense kernels
    are transposed)."""
    by_layer = {name.replace(".", "_"): name for name, _ in tmodel.named_modules()}
    p = dict(tmodel.named_modules())[by_layer[var.path.split("/")[0]]].weight
    return p, ((lambda a: a.T) if var.path.endswith("/kernel") else (lambda a: a))


def test_the_keras_schedule_is_lr_at():
    schedule = train_lm.keras_schedule(TOTAL, LR)
    for step in (0, 1, 5, 9, 10, 11, 12, TOTAL // 2, TOTAL - 1, TOTAL, TOTAL + 5):
        assert float(schedule(step)) == pytest.approx(LR * train_lm.lr_at(step, TOTAL), rel=1e-5, abs=1e-12), step


def test_a_keras_update_is_a_torch_update():
    import torch
    tmodel, kmodel = _scaled_torch().train(), lm_arch.build_keras(CFG, 0)
    lm_arch.transfer(tmodel, kmodel)
    before = [v.numpy().copy() for v in kmodel.trainable_variables]
    update = train_lm.torch_updater(tmodel, TOTAL, LR)
    train_lm.compile_keras(kmodel, TOTAL, LR)
    windows = np.random.default_rng(0).integers(3, 19, (4, CFG.context + 1)).astype(np.int32)  # 16 ids, repeated
    x, y = windows[:, :-1], windows[:, 1:]
    for _ in range(2):   # step 0 (lr 0) and step 1
        lt = update(torch.from_numpy(x).long(), torch.from_numpy(y).long())
        lk = float(kmodel.train_on_batch(x, y))
        assert lk == pytest.approx(lt, rel=1e-5)
    assert float(kmodel.optimizer.learning_rate) == pytest.approx(LR * train_lm.lr_at(2, TOTAL), rel=1e-6)
    state = update.optimizer.state
    opt = kmodel.optimizer
    for i, var in enumerate(kmodel.trainable_variables):
        p, layout = _torch_weight(tmodel, var)
        for slot, keras_slots in (("exp_avg", opt._momentums), ("exp_avg_sq", opt._velocities)):
            ref, got = layout(state[p][slot].numpy()), keras_slots[i].numpy()   # Keras 3's Adam slot lists
            err = float(np.abs(ref - got).max() / np.abs(ref).max())
            assert err < 1e-4, f"{var.path} Adam {slot}: max relative difference {err:.2e}"
        step_t, step_k = layout(p.detach().numpy()) - before[i], var.numpy() - before[i]
        # Adam's step ~ lr * sign(g) where |g| >> epsilon; Keras adds epsilon before the bias correction
        # (at step 1 it acts as 1e-8 / sqrt(1 - 0.999^2) = 2.2e-7), which moves the steps of near-zero
        # gradients: 1e-2 of the norm here, 0 with Keras' epsilon set to torch's effective one
        err = float(np.linalg.norm(step_t - step_k) / np.linalg.norm(step_t))
        assert err < 5e-2, f"{var.path}: the updates differ by {err:.2e} of their norm"


def test_both_trainers_take_the_same_batches_epoch_after_epoch():
    """`train_torch` and `train_keras` themselves, 3 epochs of 4 batches (the last one partial) from the
    same weights: they end at the same weights. Keras' fit(shuffle=True) repeats its first epoch's order
    once the global seed is set (as `_seed_all` does); with it, the twins end apart by the whole update."""
    import dataclasses

    import models
    from models.spec import TrainConfig
    from pipeline.train import _seed_all
    init = {k: v.clone() for k, v in _scaled_torch().state_dict().items()}

    def build_torch():
        m = lm_arch.build_torch(CFG, 0)
        m.load_state_dict(init)
        return m

    def build_keras():
        k = lm_arch.build_keras(CFG, 0)
        lm_arch.transfer(build_torch(), k)
        return k
    spec = dataclasses.replace(models.get("tiny_lm"), lm=CFG, input_shape=(CFG.context,), num_outputs=CFG.vocab,
                               build_torch=build_torch, build_keras=build_keras,
                               train=TrainConfig(epochs=3, batch_size=4, lr=LR, plateau=0))
    windows = np.random.default_rng(1).integers(3, 40, (14, CFG.context + 1)).astype(np.int32)
    x, y = windows[:, :-1], windows[:, 1:]
    _seed_all(0)
    tlosses, klosses = [], []
    tmodel = train_lm.train_torch(spec, x, y, lambda *a: None, tlosses, None)
    kmodel = train_lm.train_keras(spec, x, y, lambda *a: None, klosses, None)
    assert len(tlosses) == len(klosses) == 3 and klosses == pytest.approx(tlosses, rel=1e-4), (tlosses, klosses)
    start = build_keras()
    for var, var0 in zip(kmodel.trainable_variables, start.trainable_variables):
        p, layout = _torch_weight(tmodel, var)
        step_t = layout(p.detach().numpy()) - var0.numpy()
        err = float(np.linalg.norm(step_t - (var.numpy() - var0.numpy())) / np.linalg.norm(step_t))
        assert err < 5e-2, f"{var.path}: the trained twins differ by {err:.2e} of the whole update"
