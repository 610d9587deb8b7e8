"""The model registry: one line per model. Modules load lazily, and a model module imports only numpy at
the top, so listing names (or a tier's names) imports nothing heavy.

Add a model: write `models/<name>.py` defining `SPEC = ModelSpec(...)` (its `tier` says which
selection it belongs to), add its name here.

    .venv/bin/python -m pipeline export --models tier:phone     # the phone-size tier
    .venv/bin/python -m pipeline export --models digits_cnn,mtcnn_rnet
"""
from __future__ import annotations

import importlib

from models.spec import TIERS, ModelSpec

REGISTRY: dict[str, str] = {
    "digits_cnn": "models.digits_cnn",
    "mobilenet_v2": "models.mobilenet_v2",
    "ds_cnn_kws": "models.ds_cnn_kws",
    "kws_gru": "models.kws_gru",
    "tiny_transformer": "models.tiny_transformer",
    "anomaly_ae": "models.anomaly_ae",
    # phone tier (`tier:phone`): the sizes phones run
    "mobilenet_v2_224": "models.mobilenet_v2_224",
    "mobilenet_v3_small": "models.mobilenet_v3_small",
    "ds_cnn_l": "models.ds_cnn_l",
    "bert_mini": "models.bert_mini",
    "mtcnn_pnet": "models.mtcnn_pnet",
    "mtcnn_rnet": "models.mtcnn_rnet",
    "mtcnn_onet": "models.mtcnn_onet",
    "mtcnn_rnet_prelu_rewrite": "models.mtcnn_rnet_prelu_rewrite",
    "mtcnn_onet_prelu_rewrite": "models.mtcnn_onet_prelu_rewrite",
    "phone_lm": "models.phone_lm",
    # generative tier (`tier:llm`): a decoder LM with a KV cache, exported with prefill/decode entry points
    "tiny_lm": "models.tiny_lm",
}

# what a run without a model selection covers: the toy zoo fits the cold export budget (6-10 min on
# 2 cores); the phone tier adds several minutes per model, so it is asked for by name or tier
DEFAULT_TIER = "toy"


def names(tier: str = DEFAULT_TIER) -> list[str]:
    """Registered names of one tier, or of every tier with tier="all"."""
    if tier != "all" and tier not in TIERS:
        raise KeyError(f"unknown tier {tier!r}; valid tiers: {', '.join(TIERS)}, all")
    return [n for n in REGISTRY if tier == "all" or get(n).tier == tier]


def select(text: str) -> list[str]:
    """A comma-separated selection -> model names, in order, without repeats: each word a model name
    or `tier:<tier>` (`tier:all` = every model); empty -> the default tier. Unknown names fail here."""
    out: list[str] = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        for n in names(word.split(":", 1)[1]) if word.startswith("tier:") else [word]:
            get(n)
            if n not in out:
                out.append(n)
    return out or names()


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(REGISTRY)} "
                       f"(or a tier: {', '.join('tier:' + t for t in TIERS)}, tier:all)")
    spec = importlib.import_module(REGISTRY[name]).SPEC
    if spec.name != name:
        raise ValueError(f"{REGISTRY[name]}.SPEC.name is {spec.name!r}, registered as {name!r}")
    return spec


def source_file(name: str):
    """The file that defines a model: its hash keys the training cache."""
    from pathlib import Path
    get(name)
    return Path(importlib.import_module(REGISTRY[name]).__file__)
