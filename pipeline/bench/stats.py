"""Latency statistics over one steady run (numpy only: the worker imports this in any venv)."""
from __future__ import annotations

import numpy as np

from pipeline.policy import TIE_SIGMAS


def latency_stats(seconds: list[float] | np.ndarray) -> dict[str, float]:
    """Milliseconds: mean, p50/p90/p99, min, max, std and coefficient of variation."""
    a = np.asarray(seconds, dtype=np.float64) * 1e3
    if a.size == 0:
        raise ValueError("latency_stats: no samples")
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"latency_mean_ms": mean, "latency_p50_ms": float(np.percentile(a, 50)),
            "latency_p90_ms": float(np.percentile(a, 90)), "latency_p99_ms": float(np.percentile(a, 99)),
            "latency_min_ms": float(a.min()), "latency_max_ms": float(a.max()),
            "latency_std_ms": std, "latency_cv": std / mean if mean > 0 else 0.0, "runs": float(a.size)}


def repeat_spread(blocks: list) -> dict[str, float]:
    """Stability across repeated steady runs: (max - min) / median of the repeats' medians, in %."""
    meds = np.array([np.median(b) for b in blocks if len(b)], dtype=np.float64) * 1e3
    if meds.size == 0:
        raise ValueError("repeat_spread: no samples")
    mid = float(np.median(meds))
    return {"repeats": float(meds.size),
            "latency_p50_spread_pct": float((meds.max() - meds.min()) / mid * 100) if mid > 0 else 0.0}


def latency_quantiles(seconds: list[float] | np.ndarray, n: int = 50) -> list[float]:
    """The latency distribution in `n` numbers (ms): quantiles at the midpoints (i + 0.5) / n.

    Small enough for a record's info, enough to draw the distribution (the report's box plots)."""
    a = np.asarray(seconds, dtype=np.float64) * 1e3
    if a.size == 0:
        raise ValueError("latency_quantiles: no samples")
    return [round(float(v), 6) for v in np.quantile(a, (np.arange(n) + 0.5) / n)]


def agreement(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How closely an artifact reproduces its framework reference model on the same inputs."""
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"outputs {out.shape} and reference {ref.shape} differ in shape")
    diff = np.abs(out - ref)
    noise = ((out - ref) ** 2).sum()
    # a NaN output is no signal at all: its SQNR is NaN, never the 200 dB cap of a perfect match
    sqnr = 10 * np.log10((ref ** 2).sum() / noise) if noise > 0 else float("inf") if noise == 0 else float("nan")
    same = out.argmax(-1) == ref.argmax(-1)
    decisive = _decisive(ref, float(np.sqrt(((out - ref) ** 2).mean())))
    m = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
         "sqnr_db": float(min(sqnr, 200.0)),
         "top1_agreement": float(same.mean()), "top1_decisive_samples": float(decisive.sum()),
         "top1_decisive_share": float(decisive.mean())}
    if decisive.any():
        m["top1_agreement_decisive"] = float(same[decisive].mean())
    return m


def _decisive(ref: np.ndarray, rms_error: float) -> np.ndarray:
    """A sample's top-1 is "decisive" when the reference's lead over its runner-up exceeds what the
    artifact's output noise can flip: the difference of two logits' errors has ~sqrt(2) x their RMS, and
    beyond the policy's TIE_SIGMAS of it a flip is a real error, not noise on a near-tie (seeded or
    random-input models have near-tied logits everywhere: raw top-1 agreement then fails int8 files at
    47 dB SQNR)."""
    if ref.shape[1] < 2:
        return np.zeros(len(ref), bool)
    top2 = np.sort(ref, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > TIE_SIGMAS * np.sqrt(2.0) * rms_error
