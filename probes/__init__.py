"""Operator probes: one tiny model per operator, built in BOTH frameworks, run through every export
path and its runtimes (the operator support matrix).

    python -m pipeline probe [--ops conv2d,gru] [--paths tflite_fp32,et_xnnpack_fp32]

A probe is one entry of `PROBES` (in `probes/ops.py`): name -> torch builder, Keras builder, input
shapes (PyTorch layout, batch 1), per-output check kind. Adding an operator = one `Probe(...)` line
there. Frameworks are imported lazily inside the builders.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

CHECKS = ("float", "exact")          # float: within tolerance of the output's scale; exact: indices/masks
GENERATORS = ("normal", "ranked", "nan")
CALIB_SAMPLES = 16


@dataclass(frozen=True)
class Probe:
    name: str
    build_torch: Callable[[], Any]            # -> torch.nn.Module taking len(shapes) tensors
    build_keras: Callable[[], Any]            # -> keras.Model with inputs named in0, in1, ...
    shapes: tuple[tuple[int, ...], ...]       # input shapes (PyTorch layout, batch 1)
    outputs: tuple[str, ...] = ("float",)     # check kind of each output, in the torch model's order
    nhwc: bool = False                        # 4-D inputs go to Keras transposed to NHWC
    gen: str = "normal"                       # input values: normal | ranked (well separated) | nan
    run_shapes: tuple = ()                    # extra input-shape sets to run (dynamic-shape probes)
    dynamic: Callable[[], Any] | None = None  # -> torch.export dynamic_shapes
    note: str = ""

    def __post_init__(self) -> None:
        if not set(self.outputs) <= set(CHECKS):
            raise ValueError(f"probe {self.name}: output checks {self.outputs} not in {CHECKS}")
        if self.gen not in GENERATORS:
            raise ValueError(f"probe {self.name}: gen {self.gen!r} not in {GENERATORS}")

    def input_sets(self) -> list[list[np.ndarray]]:
        """Deterministic inputs (PyTorch layout): the export example first, then any extra shapes."""
        sets = [self.shapes] + [tuple(s) for s in self.run_shapes]
        return [[self._make(s, i, k) for k, s in enumerate(shapes)] for i, shapes in enumerate(sets)]

    def calib(self) -> list[np.ndarray]:
        """Calibration set (one array per input, CALIB_SAMPLES along the batch axis)."""
        return [np.concatenate([self._make(s, 100 + j, k) for j in range(CALIB_SAMPLES)])
                for k, s in enumerate(self.shapes)]

    def _make(self, shape, set_index: int, input_index: int) -> np.ndarray:
        rng = np.random.default_rng([zlib.crc32(self.name.encode()), set_index, input_index])
        n = int(np.prod(shape))
        if self.gen == "ranked":
            # distinct values spaced far beyond one int8 step, so argmax/top-k are well defined
            return rng.permutation(np.linspace(-4, 4, n, dtype=np.float32)).reshape(shape)
        x = rng.standard_normal(shape).astype(np.float32)
        if self.gen == "nan":
            flat = x.reshape(-1)
            idx = rng.choice(n, size=max(3, n // 8), replace=False)
            flat[idx[0::3]] = np.nan
            flat[idx[1::3]] = np.inf
            flat[idx[2::3]] = -np.inf
        return x

    def to_keras(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if self.nhwc and a.ndim == 4 else a
                for a in arrays]


@dataclass(frozen=True)
class ProbeSpec:
    """What an export path reads from `ctx.spec` for a probe (the model zoo passes a ModelSpec)."""
    name: str
    keras_layout: str


def all_probes() -> dict[str, Probe]:
    from probes.ops import PROBES
    return PROBES


def get(name: str) -> Probe:
    probes = all_probes()
    if name not in probes:
        raise KeyError(f"unknown probe {name!r}; valid probes: {', '.join(probes)}")
    return probes[name]
