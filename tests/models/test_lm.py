"""The generative tier's model object: LMConfig rules, the twins (same parameters, same logits after the
transfer), the Keras network at any length, the tokenizer and text (deterministic, held-out split).
No training (the trained model is checked in tests/export/test_llm_paths.py, slow).

    .venv/bin/python -m pytest -q tests/models/test_lm.py
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import models
from models.lm_config import LMConfig

GENERATIVE = [n for n in models.names("all") if models.get(n).task == "generation"]


def test_the_llm_tier_selects_the_trained_lm_only():
    assert models.select("tier:llm") == ["tiny_lm"]
    assert "phone_lm" in models.names("phone") and "tiny_lm" not in models.names()
    for name in GENERATIVE:
        spec = models.get(name)
        assert spec.lm is not None and spec.input_shape == (spec.lm.context,) and spec.num_outputs == spec.lm.vocab


def test_lmconfig_rejects_impossible_shapes():
    ok = dict(vocab=64, hidden=32, layers=1, heads=4, kv_heads=2, ffn=64, context=16)
    assert LMConfig(**ok).dim == 8 and LMConfig(**ok).prefills == (4,)
    for bad, match in ((dict(kv_heads=3), "multiple of kv_heads"), (dict(prefill_max=17), "prefill_max"),
                       (dict(prefill_lengths=(0,)), "prefill_lengths"), (dict(eos_id=64), "special token"),
                       (dict(heads=32, kv_heads=32), "even")):
        with pytest.raises(ValueError, match=match):
            LMConfig(**{**ok, **bad})
    with pytest.raises(ValueError, match="LMConfig"):
        dataclasses.replace(models.get("tiny_lm"), lm=None)   # a generative spec needs its LMConfig


def test_from_hf_reads_a_llama_config_and_refuses_what_it_cannot_describe():
    lm = models.get("tiny_lm").lm
    cfg = lm.llama_config().to_dict() | {"architectures": ["LlamaForCausalLM"]}
    back = LMConfig.from_hf(cfg, prefill_max=lm.prefill_max, prefill_lengths=lm.prefill_lengths)
    assert back == lm
    for change, match in (({"architectures": ["GPT2LMHeadModel"]}, "GPT2LMHeadModel not supported"),
                          ({"attention_bias": True}, "attention_bias"), ({"hidden_act": "gelu"}, "hidden_act")):
        with pytest.raises(ValueError, match=match):
            LMConfig.from_hf(cfg | change)
    with pytest.raises(TypeError, match="unknown fields"):
        LMConfig.from_hf(cfg, cache=64)


@pytest.fixture(scope="module")
def tiny_twins():
    """tiny_lm's seeded twins, the RMSNorm weights randomised so the transfer of every tensor shows."""
    import torch
    spec = models.get("tiny_lm")
    tmodel, kmodel = spec.build_torch(), spec.build_keras()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
    spec.transfer(tmodel, kmodel)
    return spec, tmodel, kmodel


def test_twins_have_the_same_parameters_and_logits(tiny_twins):
    import torch
    spec, tmodel, kmodel = tiny_twins
    n = sum(p.numel() for p in tmodel.parameters())
    assert n == kmodel.count_params() == spec.lm.params(), (n, kmodel.count_params(), spec.lm.params())
    x = np.random.default_rng(0).integers(0, spec.lm.vocab, (2, spec.lm.context)).astype(np.int32)
    with torch.no_grad():
        ref = tmodel(input_ids=torch.from_numpy(x).long()).logits.numpy()
    got = np.asarray(kmodel(x))
    diff = float(np.abs(ref - got).max())
    assert diff <= spec.tolerances.transfer_atol, f"transfer max abs diff {diff:.3g} (logits max {np.abs(ref).max():.3g})"


def test_keras_logits_at_any_length_equal_the_window_model(tiny_twins):
    from models.lm_arch import keras_logits
    spec, _, kmodel = tiny_twins
    x = np.random.default_rng(1).integers(0, spec.lm.vocab, (1, spec.lm.context)).astype(np.int32)
    full = np.asarray(kmodel(x))
    short = keras_logits(kmodel, spec.lm, x[:, :20])   # causal: the first 20 positions see the same tokens
    assert short.shape == (1, 20, spec.lm.vocab)
    assert float(np.abs(short - full[:, :20]).max()) < 1e-5


def test_text_and_tokenizer_are_deterministic_and_split():
    from models import lm_text
    train, test = lm_text.topics()
    assert len(test) == -(-(len(train) + len(test)) // lm_text.HOLD_OUT), (len(train), len(test))
    assert not set(train) & set(test), "a held-out text is also trained on"
    a, b = (lm_text.train_tokenizer(train[:20], 300) for _ in range(2))
    assert a.to_str() == b.to_str()
    ids = lm_text.stream(a, test[:2])
    assert ids[0] == 1 and ids.dtype == np.int32 and (ids == 2).sum() == 2
    assert a.decode([int(i) for i in ids[1:20]]) == test[0][:len(a.decode([int(i) for i in ids[1:20]]))]
