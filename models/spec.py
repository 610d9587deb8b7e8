"""What a reference model is: one `ModelSpec` per model, everything else hangs off it.

A model module (e.g. `models/digits_cnn.py`) defines `SPEC = ModelSpec(...)` and is listed once in
`models/__init__.py`. Frameworks are imported lazily inside the builders so that light processes
(the benchmark worker, the report) never import torch or TensorFlow.

Layout contract: datasets are numpy float32 in the *PyTorch* layout (NCHW for images, (N, T, F) for
sequences). `keras_layout` says how the Keras twin sees the same tensor ("nhwc": transposed from
NCHW; "same": unchanged). Both twins output logits (classification), the reconstruction, or for
"detection" one vector of the detector's heads concatenated (no labels are scored: parity only).
"generation" models (decoder-only LMs) carry an `LMConfig` (`models/lm_config.py`) in `ModelSpec.lm`:
their data are token windows, their twins train in `pipeline/train_lm.py`, and only the export paths
that declare the task (`export/registry.py`: `ExportPath.tasks`) export them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# a model's parity bounds and quality allowance: defaults in the one policy, overridden per model
from pipeline.policy import Tolerances  # noqa: F401 (re-exported)

TASKS = ("classification", "reconstruction", "detection", "generation")
LAYOUTS = ("nhwc", "same")
# size tiers: `toy` models make up the default zoo (`make bench-mobile`); `phone` models are the sizes
# phones run (millions of parameters), selected with `--models tier:phone` (see `models.select`);
# `llm` is the generative tier (a small decoder LM trained here), opt-in with `--models tier:llm`
TIERS = ("toy", "phone", "llm")
# where the weights come from, and what that makes meaningful in the report
WEIGHTS = {
    "trained": "trained natively in each framework on the model's data",
    "calibrated": "calibrated weights: seeded, BatchNorm statistics re-estimated on generated inputs; "
                  "latency, size and parity only; accuracy not meaningful",
    "pretrained": "real weights shipped by a package, PyTorch only (the Keras twin gets them by transfer); "
                  "inputs generated: parity, latency and size; accuracy not measured",
}


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __post_init__(self) -> None:
        for name in ("x_train", "x_test"):
            if getattr(self, name).dtype != np.float32:
                raise TypeError(f"Dataset.{name} must be float32, got {getattr(self, name).dtype}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("Dataset: inputs and labels differ in length")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8              # at most; see `plateau`
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    # early stop: training ends once `patience` epochs in a row each lowered the mean training loss by
    # less than `plateau` (a fraction of the epoch before's); 0 = every epoch runs. Each twin is judged
    # on its own curve (the train record says how many epochs each ran).
    plateau: float = 0.005
    patience: int = 2
    # at most this many threads (0 = every core the run gives it). A small model's per-step work is too
    # short to split: tiny_lm's step measured 0.19 CPU-s / 0.39 s wall at 1 thread vs 1.14 / 1.85 at 2
    # (side by side, load ~4): OpenMP barriers cost more than they save. Not in repr: the train cache key
    # is repr(spec.train), and how many threads ran does not make other weights (seeded; same losses).
    threads: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"TrainConfig: epochs, batch_size and lr must be positive: {self}")
        if self.plateau < 0 or self.patience < 1 or self.threads < 0:
            raise ValueError(f"TrainConfig: plateau and threads must be >= 0 and patience >= 1: {self}")

    def plateaued(self, losses: list[float]) -> bool:
        """THE early-stop rule, for both frameworks: the last `patience` epochs each improved on the
        epoch before by less than `plateau` of it (a loss that went up counts as no improvement)."""
        if not self.plateau or len(losses) <= self.patience:
            return False
        recent = losses[-self.patience - 1:]
        return all(b > a * (1 - self.plateau) for a, b in zip(recent, recent[1:]))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    task: str
    input_shape: tuple[int, ...]          # one sample, PyTorch layout, no batch dim
    num_outputs: int                      # classes, or features for reconstruction
    load_data: Callable[[int], Any]       # seed -> Dataset (generated or shipped by a package);
                                          #    generation: seed -> models.lm_text.TokenData
    build_torch: Callable[[], Any]        # -> torch.nn.Module (untrained, deterministic given the seed;
                                          #    weights="pretrained": with the shipped weights loaded)
    build_keras: Callable[[], Any]        # -> keras.Model with layers named like the torch modules
    transfer: Callable[[Any, Any], None]  # copy torch weights into the Keras twin, in place
    keras_layout: str = "nhwc"
    train: TrainConfig = field(default_factory=TrainConfig)
    tolerances: Tolerances = field(default_factory=Tolerances)
    calibration_samples: int = 200        # representative/calibration set taken from training data
    eval_samples: int = 0                 # 0 = the whole test set
    # measured cold train + export seconds (1 thread, 2-core machine): `export` starts the costliest
    # models first, so the last one to finish is a short one (scheduling only, not a budget)
    build_cost_s: float = 60.0
    tier: str = "toy"                     # one of TIERS
    weights: str = "trained"              # a key of WEIGHTS
    lm: Any = None                        # models.lm_config.LMConfig: required iff task == "generation"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task {self.task!r} not in {TASKS}")
        if self.tier not in TIERS:
            raise ValueError(f"{self.name}: tier {self.tier!r} not in {TIERS}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"{self.name}: weights {self.weights!r} not in {tuple(WEIGHTS)}")
        if self.keras_layout not in LAYOUTS:
            raise ValueError(f"{self.name}: keras_layout {self.keras_layout!r} not in {LAYOUTS}")
        if (self.task == "generation") != (self.lm is not None):
            raise ValueError(f"{self.name}: an LMConfig (lm=...) is required for task 'generation' and only there")
        if not self.name.isidentifier():
            raise ValueError(f"model name {self.name!r} must be an identifier")

    @property
    def sources(self) -> tuple[str, ...]:
        """The twins this model has: pretrained weights exist for PyTorch only, so there is no native
        Keras twin (`keras_tw` carries the real weights to TensorFlow)."""
        if self.weights == "pretrained":
            return ("torch", "keras_tw")
        return ("torch", "keras", "keras_tw")

    def to_keras(self, x: np.ndarray) -> np.ndarray:
        """A batch in PyTorch layout -> the same batch in the Keras twin's layout."""
        if self.keras_layout == "nhwc" and x.ndim == 4:
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return x
