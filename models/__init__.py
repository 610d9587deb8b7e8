"""The model registry: one line per model. Modules load lazily, so listing names imports nothing heavy.

Add a model: write `models/<name>.py` defining `SPEC = ModelSpec(...)`, add its name here.
"""
from __future__ import annotations

import importlib

from models.spec import ModelSpec

REGISTRY: dict[str, str] = {
    "digits_cnn": "models.digits_cnn",
    "mobilenet_v2": "models.mobilenet_v2",
    "ds_cnn_kws": "models.ds_cnn_kws",
    "kws_gru": "models.kws_gru",
    "tiny_transformer": "models.tiny_transformer",
    "anomaly_ae": "models.anomaly_ae",
}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(REGISTRY)}")
    spec = importlib.import_module(REGISTRY[name]).SPEC
    if spec.name != name:
        raise ValueError(f"{REGISTRY[name]}.SPEC.name is {spec.name!r}, registered as {name!r}")
    return spec


def source_file(name: str):
    """The file that defines a model: its hash keys the training cache."""
    from pathlib import Path
    get(name)
    return Path(importlib.import_module(REGISTRY[name]).__file__)
