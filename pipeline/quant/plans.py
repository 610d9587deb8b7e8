"""The small rules of the quant-debug recovery plans, light enough for the report to import (no
runtimes, no debuggers): how much quality a record lost vs fp32, and which plan is best.

    from pipeline.quant.plans import best_plan, loss
    best_plan(records, "et_xnnpack_int8", tolerances)   # -> the recommended plan record, or None

The allowance itself (and how a loss is computed) is the policy's: `parity.quality_loss`, `loss_limit`.
"""
from __future__ import annotations

import math

from pipeline import parity
from pipeline.parity import Tolerances
from pipeline.schema import Record

# int8 export paths with a per-layer debugger (and recovery plans) and the twins each debugs; the
# first twin is the one whose table the report reads (keras_tw: the same weights as the PyTorch twin)
DEBUGGED = {"tflite_int8": ("keras_tw", "keras"), "et_xnnpack_int8": ("torch",)}


def loss(m: dict) -> float:
    """Quality lost vs fp32 in the model's own unit: accuracy points, or % more reconstruction MSE."""
    return m.get("accuracy_drop_points", m.get("mse_increase_pct", float("nan")))


def _metric(m: dict) -> str:
    return "accuracy" if "accuracy_drop_points" in m else "reconstruction_mse"


def loss_limit(m: dict, tol: Tolerances) -> float:
    """The largest acceptable `loss(m)`: the model's allowance (`parity.loss_limit`): accuracy-drop points,
    or % more reconstruction MSE."""
    return parity.loss_limit(_metric(m), tol)


def within(m: dict, tol: Tolerances) -> bool:
    """The plan's loss is within the model's allowance (the policy's comparison)."""
    return parity.loss_ok(_metric(m), loss(m), tol)


def best_plan(recs: list[Record], path: str, tol: Tolerances) -> Record | None:
    """The smallest quantized plan within the loss limit of fp32, else the one that loses least."""
    plans = [r for r in recs if r.kind == "quant_debug" and r.status == "ok" and r.path.startswith(path + ":")
             and r.quantization != "fp32" and not math.isnan(loss(r.metrics))]
    if not plans:
        return None
    ok = [r for r in plans if within(r.metrics, tol)]
    if ok:
        return min(ok, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_p50_ms"]))
    return min(plans, key=lambda r: loss(r.metrics))
