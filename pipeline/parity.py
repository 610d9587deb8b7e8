"""Parity: does an artifact compute what its source model computes? The ONE place for the thresholds
and the judging rule, used by `python -m pipeline package` and by the zoo bench (`bench/harness.py`).

    t = parity.DEFAULTS["int8"]                         # or parity.for_zoo(spec, "int8")
    v = parity.judge(metrics, "int8", t)                 # Verdict(status="ok"|"mismatch", reason)

Metrics are those of `pipeline.bench.stats.agreement` (max_abs_diff, sqnr_db, top1_agreement) plus
`ref_absmax` (largest |reference output|) for the relative bound. A check whose metric is missing is
not judged (top-1 agreement exists only when the output is a batch of logits). Bounds are compared
with a stated epsilon (EPS), never exactly at their edge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

EPS = 1e-9
TOP1_KEYS = ("top1_agreement", "top1_agreement_decisive", "top1_decisive_samples", "top1_decisive_share")
QUANTIZATIONS = ("fp32", "fp16", "dynamic_int8", "int8")


@dataclass(frozen=True)
class Thresholds:
    """Parity bounds of one quantization; None = not checked."""
    min_sqnr_db: float | None = None          # signal-to-quantization-noise ratio of the outputs
    min_top1_agreement: float | None = None   # share of samples whose top-1 equals the reference's
    max_rel_diff: float | None = None         # max abs diff / max(1, |reference| max)
    max_abs_diff: float | None = None         # absolute bound (the zoo's Tolerances use this)
    max_perplexity_increase_pct: float | None = None   # generative: held-out perplexity above the reference's

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and not v >= 0:
                raise ValueError(f"parity threshold {f.name} must be >= 0, got {v}")
        if self.min_top1_agreement is not None and self.min_top1_agreement > 1:
            raise ValueError(f"min_top1_agreement is a share (0..1), got {self.min_top1_agreement}")


# Defaults for a user's model (documented in docs/manifest.md). fp32 artifacts differ from the framework
# only by operator order/fusion (1e-6 relative seen on every path here); fp16 weights cost ~3-4
# decimal digits; int8 (static or dynamic-range) typically lands at 20-35 dB SQNR on the zoo.
DEFAULTS: dict[str, Thresholds] = {
    "fp32": Thresholds(min_sqnr_db=60.0, min_top1_agreement=0.99, max_rel_diff=1e-3),
    "fp16": Thresholds(min_sqnr_db=30.0, min_top1_agreement=0.98, max_rel_diff=5e-2),
    "dynamic_int8": Thresholds(min_sqnr_db=15.0, min_top1_agreement=0.95),
    "int8": Thresholds(min_sqnr_db=15.0, min_top1_agreement=0.95),
}


@dataclass(frozen=True)
class Verdict:
    status: str     # ok | mismatch
    reason: str     # "" when ok; otherwise every bound missed, with the size of the error


def judge(metrics: dict, quantization: str, t: Thresholds) -> Verdict:
    """ok when every bound whose metric is present holds; else mismatch naming each miss and its size."""
    if metrics.get("output_count_mismatch"):
        return Verdict("mismatch", f"{quantization} parity: the outputs differ in number or size from the "
                                   "source model's")
    misses = []
    sqnr = metrics.get("sqnr_db")
    if t.min_sqnr_db is not None and sqnr is not None and sqnr < t.min_sqnr_db - EPS:
        misses.append(f"SQNR {sqnr:.1f} dB < {t.min_sqnr_db:g} dB")
    agree, on = _top1(metrics)
    if t.min_top1_agreement is not None and agree is not None and agree < t.min_top1_agreement - EPS:
        misses.append(f"top-1 agreement {agree:.3f} < {t.min_top1_agreement:g}{on}")
    diff = metrics.get("max_abs_diff")
    if t.max_abs_diff is not None and diff is not None and diff > t.max_abs_diff + EPS:
        misses.append(f"max abs diff {diff:.3g} > {t.max_abs_diff:g}")
    if t.max_rel_diff is not None and diff is not None:
        rel = diff / max(1.0, float(metrics.get("ref_absmax", 1.0)))
        if rel > t.max_rel_diff + EPS:
            misses.append(f"max abs diff {diff:.3g} is {rel:.3g} of the output range > {t.max_rel_diff:g}")
    ppl = metrics.get("perplexity_increase_pct")
    if t.max_perplexity_increase_pct is not None and ppl is not None and ppl > t.max_perplexity_increase_pct + EPS:
        misses.append(f"held-out perplexity {ppl:+.2f} % vs the reference > +{t.max_perplexity_increase_pct:g} %")
    if any(v != v for v in (sqnr, agree, diff, ppl) if v is not None):   # NaN outputs never pass
        misses.append("outputs contain NaN")
    if not misses:
        return Verdict("ok", "")
    return Verdict("mismatch", f"{quantization} parity: " + "; ".join(misses))


def _top1(metrics: dict) -> tuple[float | None, str]:
    """The top-1 agreement to judge, and on which samples. Samples whose reference top-1 is not
    decisive (`stats.TIE_SIGMAS`: a lead the artifact's output noise can flip) are left out, as long as
    the decisive ones are at least MIN_DECISIVE samples and MIN_DECISIVE_SHARE of the set; otherwise
    (a very noisy or wrong artifact makes nothing decisive) the raw figure over every sample is judged."""
    n, share = metrics.get("top1_decisive_samples"), metrics.get("top1_decisive_share")
    if n is None or share is None or n < MIN_DECISIVE or share < MIN_DECISIVE_SHARE - EPS:
        return metrics.get("top1_agreement"), ""
    # every sample decisive: both figures are the same one, so the verdict names no subset
    note = "" if share >= 1.0 - EPS else \
        f" (on the {n:.0f} samples, {share:.0%}, whose reference top-1 leads by more than the noise)"
    return metrics.get("top1_agreement_decisive"), note


MIN_DECISIVE, MIN_DECISIVE_SHARE = 8, 0.5


# Generative artifacts (issue 26, pipeline/generative/): judged on the logits of every decode step of
# every prompt, teacher-forced along the reference's greedy tokens (stats.agreement over [steps, vocab]),
# and on the held-out perplexity. Top-1 agreement on the decisive steps is "greedy tokens identical to
# the reference" wherever the reference's pick is not a near-tie the artifact's own noise can flip
# (stats.TIE_SIGMAS): fp32 must pick every decisive token the reference picks. Quantized bounds: 8da4w
# (int4 weights in groups of 32, int8 activations) and int8 weights cost logit precision that the
# greedy tokens and the perplexity then show; measured on the trained tiny_lm (docs/generative.md).
GENERATIVE: dict[str, Thresholds] = {
    "fp32": Thresholds(min_sqnr_db=60.0, min_top1_agreement=1.0, max_perplexity_increase_pct=0.1),
    "dynamic_int8": Thresholds(min_sqnr_db=20.0, min_top1_agreement=0.9, max_perplexity_increase_pct=5.0),
    "8da4w": Thresholds(min_sqnr_db=10.0, min_top1_agreement=0.8, max_perplexity_increase_pct=15.0),
}


def for_generation(quantization: str) -> Thresholds:
    """The bounds of a generative artifact's quantization (GENERATIVE); an unknown one: int8's."""
    return GENERATIVE.get(quantization, GENERATIVE["dynamic_int8"])


# What a runtime did with an input at or past a generative artifact's declared bound (the bound probe,
# pipeline/generative/generate.py; executorch#20546: bounds not enforced at run time). Past a bound only
# a refusal is safe. An output within the bound is judged by its quantization's SQNR floor; one past it
# must also come within PAST_BOUND_MARGIN_DB of the artifact's own worst step inside its bounds (an
# int8 file's noise must not hide a clamped cache write: 31 dB past the cache vs 36 dB inside, measured
# on a litert-torch int8 file), so "accepted" means it ran AND matched a model without that bound.
BOUND_OUTCOMES = {
    "ok": "within the bound: ran and matched the reference",
    "wrong": "within the bound: ran but computed something else",
    "refused_valid": "within the bound, yet refused",
    "refused": "past the bound: refused with an error",
    "accepted": "past the bound: ran, and matched the reference (the bound is not enforced)",
    "silent_wrong": "past the bound: ran and returned a wrong output without an error",
}
SAFE_BOUND_OUTCOMES = ("ok", "refused", "accepted")
PAST_BOUND_MARGIN_DB = 3.0


def judge_bound(within: bool, ran: bool, sqnr_db: float | None, quantization: str,
                own_sqnr_db: float | None = None) -> str:
    """One bound probe's outcome (a key of BOUND_OUTCOMES); `own_sqnr_db`: the artifact's worst step
    SQNR inside its bounds."""
    if not ran:
        return "refused_valid" if within else "refused"
    floor = for_generation(quantization).min_sqnr_db or 0.0
    if not within and own_sqnr_db is not None and own_sqnr_db == own_sqnr_db:
        floor = max(floor, own_sqnr_db - PAST_BOUND_MARGIN_DB)
    right = sqnr_db is not None and sqnr_db == sqnr_db and sqnr_db >= floor - EPS
    if within:
        return "ok" if right else "wrong"
    return "accepted" if right else "silent_wrong"


def for_zoo(spec, quantization: str) -> Thresholds:
    """A zoo model's own `Tolerances` (models/spec.py) as parity bounds: fp32/fp16 by max abs diff,
    int8 by top-1 agreement for classifiers, by the user-model SQNR floor (DEFAULTS) for detectors (a
    reconstruction is judged by its MSE in the report, as it has no top-1)."""
    tol = spec.tolerances
    if quantization == "fp32":
        return Thresholds(max_abs_diff=tol.fp32_atol)
    if quantization == "fp16":
        return Thresholds(max_abs_diff=tol.fp16_atol)
    if spec.task == "classification":
        return Thresholds(min_top1_agreement=tol.int8_top1_agreement)
    if spec.task == "detection":     # no labels, no class, nothing reconstructed: a user model's SQNR floor
        return Thresholds(min_sqnr_db=DEFAULTS[quantization].min_sqnr_db)
    return Thresholds()


def with_overrides(base: dict[str, Thresholds], items: list[str]) -> dict[str, Thresholds]:
    """`--tolerance int8.min_sqnr_db=10` (repeatable) applied to the defaults; bad keys fail at once."""
    out = dict(base)
    names = {f.name for f in dataclasses.fields(Thresholds)}
    for item in items:
        key, sep, value = item.partition("=")
        quant, _, field = key.partition(".")
        if not sep or quant not in QUANTIZATIONS or field not in names:
            raise ValueError(f"--tolerance {item!r}: expected QUANT.FIELD=VALUE with QUANT in "
                             f"{', '.join(QUANTIZATIONS)} and FIELD in {', '.join(sorted(names))}")
        try:
            v = None if value.lower() in ("none", "off") else float(value)
        except ValueError:
            raise ValueError(f"--tolerance {item!r}: {value!r} is not a number (or 'off')") from None
        out[quant] = dataclasses.replace(out[quant], **{field: v})
    return out


def compare(outputs: list, references: list) -> dict:
    """Parity metrics of an artifact's outputs against the source model's (same samples, same order):
    the worst over the outputs. top-1 agreement only where the output is a batch of logits (N, C>1)."""
    import numpy as np

    from pipeline.bench.stats import agreement
    if len(outputs) != len(references):
        return {"output_count_mismatch": 1.0, "sqnr_db": float("nan")}
    worst: dict = {}
    for out, ref in zip(outputs, references):
        out, ref = np.asarray(out, np.float32), np.asarray(ref, np.float32)
        if out.size != ref.size:
            return {"output_count_mismatch": 1.0, "sqnr_db": float("nan")}
        m = agreement(out.reshape(ref.shape), ref)
        if not (ref.ndim == 2 and ref.shape[1] > 1):
            for k in TOP1_KEYS:
                m.pop(k, None)
        m["ref_absmax"] = float(np.abs(ref).max())
        for k, v in m.items():
            better_low = k in ("max_abs_diff", "mean_abs_diff")
            if k not in worst:
                worst[k] = v
            elif k != "ref_absmax":
                worst[k] = max(worst[k], v) if better_low else min(worst[k], v)
            else:
                worst[k] = max(worst[k], v)
    return worst
