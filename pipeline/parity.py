"""Parity: does an artifact compute what its source model computes? The judging, with the bounds of
`pipeline/policy.py` (re-exported here: import both from this module), used by `python -m pipeline
package`, the zoo bench (`bench/harness.py`), the emulated device, the probes, the report and the tests.

    t = parity.DEFAULTS["int8"]                         # or parity.for_zoo(spec, "int8")
    v = parity.judge(metrics, "int8", t)                 # Verdict(status="ok"|"mismatch", reason, figures)
    print(v.figures)                                     # the figures judged (print these, not others)

Metrics are those of `pipeline.bench.stats.agreement` (max_abs_diff, sqnr_db, top1_agreement) plus
`ref_absmax` (largest |reference output|) for the relative bound. A check whose metric is missing is
not judged (top-1 agreement exists only when the output is a batch of logits). Bounds are compared
with a stated epsilon (EPS), never exactly at their edge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.policy import (BOUND_OUTCOMES, CELL_STATUSES, COUNT_LABEL, DEFAULTS, DEVICE,  # noqa: F401 (re-exported)
                             ELSEWHERE, GENERATIVE, PAST_BOUND_MARGIN_DB, SAFE_BOUND_OUTCOMES,
                             ELSEWHERE_STATUSES, EVIDENCE, EPS, INT8_KERNEL_GAIN, INT8_MIN_SPEEDUP, INT8_SIZE_TARGET,
                             MEANING, MIN_DECISIVE, MIN_DECISIVE_SHARE, PACKAGE_SPEED_SLACK, PEER_AGREEMENT,
                             PROBE, PROBE_CELLS, PROBE_GOOD, PROBE_LABEL, PROXY_BAND, QUANTIZATIONS, RAN,
                             REGRESSION_GATE, SAME_SIZE_RATIO, SEVERITY, STATUS_COLOR, STATUS_MARK, STATUSES,
                             TIE_SIGMAS, WEIGHT_ONLY, DeviceRule, Elsewhere, EvidenceRule, ProbeRule, Thresholds,
                             Tolerances, elsewhere, num, ran, runs_elsewhere)

TOP1_KEYS = ("top1_agreement", "top1_agreement_decisive", "top1_decisive_samples", "top1_decisive_share")


@dataclass(frozen=True)
class Verdict:
    status: str        # ok | mismatch
    reason: str        # "" when ok; otherwise every bound missed, with the size of the error
    figures: str = ""  # the figures judged, each against its bound: what a log line prints


def _bound(figures: list, misses: list, value: float, bound: float, floor: bool, shown: str, missed: str) -> None:
    """One bound judged: its figure always printed beside the bound, the miss when the value is past it
    (a floor for SQNR/agreement, a ceiling for errors; EPS of slack either way). NaN is caught by judge."""
    figures.append(shown)
    if (value < bound - EPS) if floor else (value > bound + EPS):
        misses.append(missed)


def judge(metrics: dict, quantization: str, t: Thresholds) -> Verdict:
    """ok when every bound whose metric is present holds; else mismatch naming each miss and its size."""
    if metrics.get("output_count_mismatch"):
        why = "the outputs differ in number or size from the source model's"
        return Verdict("mismatch", f"{quantization} parity: {why}", why)
    misses, figures = [], []
    sqnr = metrics.get("sqnr_db")
    if t.min_sqnr_db is not None and sqnr is not None:
        _bound(figures, misses, sqnr, t.min_sqnr_db, True, f"SQNR {sqnr:.1f} dB (>= {t.min_sqnr_db:g})",
               f"SQNR {sqnr:.1f} dB < {t.min_sqnr_db:g} dB")
    agree, on = _top1(metrics)
    if t.min_top1_agreement is not None and agree is not None:
        _bound(figures, misses, agree, t.min_top1_agreement, True,
               f"top-1 agreement {agree:.3f}{_on_short(metrics, on)} (>= {t.min_top1_agreement:g})",
               f"top-1 agreement {agree:.3f} < {t.min_top1_agreement:g}{on}")
    diff = metrics.get("max_abs_diff")
    if t.max_abs_diff is not None and diff is not None:
        _bound(figures, misses, diff, t.max_abs_diff, False, f"max abs diff {diff:.3g} (<= {num(t.max_abs_diff)})",
               f"max abs diff {diff:.3g} > {t.max_abs_diff:g}")
    if t.max_rel_diff is not None and diff is not None:
        rel = diff / max(1.0, float(metrics.get("ref_absmax", 1.0)))
        _bound(figures, misses, rel, t.max_rel_diff, False,
               f"max abs diff {rel:.3g} of the output range (<= {num(t.max_rel_diff)})",
               f"max abs diff {diff:.3g} is {rel:.3g} of the output range > {t.max_rel_diff:g}")
    ppl = metrics.get("perplexity_increase_pct")
    if t.max_perplexity_increase_pct is not None and ppl is not None:
        _bound(figures, misses, ppl, t.max_perplexity_increase_pct, False,
               f"held-out perplexity {ppl:+.2f} % (<= +{num(t.max_perplexity_increase_pct)} %)",
               f"held-out perplexity {ppl:+.2f} % vs the reference > +{t.max_perplexity_increase_pct:g} %")
    if any(v != v for v in (sqnr, agree, diff, ppl) if v is not None):   # NaN outputs never pass
        misses.append("outputs contain NaN")
    shown = ", ".join(figures) or "no bound to judge"
    if not misses:
        return Verdict("ok", "", shown)
    return Verdict("mismatch", f"{quantization} parity: " + "; ".join(misses), shown)


def _top1(metrics: dict) -> tuple[float | None, str]:
    """The top-1 agreement to judge, and on which samples. Samples whose reference top-1 is not
    decisive (TIE_SIGMAS: a lead the artifact's output noise can flip) are left out, as long as
    the decisive ones are at least MIN_DECISIVE samples and MIN_DECISIVE_SHARE of the set; otherwise
    (a very noisy or wrong artifact makes nothing decisive) the raw figure over every sample is judged."""
    n, share = metrics.get("top1_decisive_samples"), metrics.get("top1_decisive_share")
    if n is None or share is None or n < MIN_DECISIVE or share < MIN_DECISIVE_SHARE - EPS:
        return metrics.get("top1_agreement"), ""
    # every sample decisive: both figures are the same one, so the verdict names no subset
    note = "" if share >= 1.0 - EPS else \
        f" (on the {n:.0f} samples, {share:.0%}, whose reference top-1 leads by more than the noise)"
    return metrics.get("top1_agreement_decisive"), note


def _on_short(metrics: dict, on: str) -> str:
    return f" on {metrics['top1_decisive_samples']:.0f} decisive samples" if on else ""


def eval_prefix(metrics: dict) -> str:
    """"first 100 of 500 eval samples" when the eval pass of a slow artifact stopped early (its time
    budget, `BenchConfig.eval_max_seconds`), else "": every quality figure is on those samples."""
    n, of = metrics.get("eval_samples"), metrics.get("eval_set_samples")
    return f"first {n:.0f} of {of:.0f} eval samples" if n is not None and of and n < of else ""


def top1_judged(metrics: dict) -> float | None:
    """The top-1 agreement the verdict judges (decisive samples when there are enough): the one to show."""
    return _top1(metrics)[0]


def for_generation(quantization: str) -> Thresholds:
    """The bounds of a generative artifact's quantization (GENERATIVE); an unknown one: int8's."""
    return GENERATIVE.get(quantization, GENERATIVE["dynamic_int8"])


def judge_bound(within: bool, runs: bool, sqnr_db: float | None, quantization: str,
                own_sqnr_db: float | None = None, died: bool = False) -> str:
    """One bound probe's outcome (a key of BOUND_OUTCOMES): `runs` = the runtime returned an output;
    `own_sqnr_db`: the artifact's worst step SQNR inside its bounds (what an output past them must come
    close to); `died`: the runtime's process died on it."""
    if died:
        return "crashed"
    if not runs:
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


# ---------------------------------------------------------------- quality vs the float reference

QUALITY_METRICS = ("accuracy", "reconstruction_mse")


def quality_loss(metric: str, value: float, reference: float) -> float:
    """Quality lost vs the float reference in the metric's own unit: accuracy points, or % more
    reconstruction MSE (what quant-debug records as accuracy_drop_points / mse_increase_pct)."""
    if metric == "accuracy":
        return (reference - value) * 100
    if metric == "reconstruction_mse":
        return (value / reference - 1) * 100 if reference else (0.0 if value == 0 else float("inf"))
    raise ValueError(f"no quality allowance for metric {metric!r}; known: {', '.join(QUALITY_METRICS)}")


def loss_limit(metric: str, tol: Tolerances) -> float:
    """The largest acceptable `quality_loss` of a model with these tolerances."""
    return tol.accuracy_drop_points if metric == "accuracy" else tol.mse_increase_pct


def loss_ok(metric: str, loss: float, tol: Tolerances) -> bool:
    """A `quality_loss` within the model's allowance (compared with EPS, never at the edge)."""
    return loss <= loss_limit(metric, tol) + EPS


def quality_ok(metric: str, value: float, reference: float, tol: Tolerances) -> bool:
    """Within the model's allowance of its float reference: the int8 target, the "what should I
    ship?" candidates and the best recovery plan all judge with this."""
    return loss_ok(metric, quality_loss(metric, value, reference), tol)


def allowance_prose(tol: Tolerances) -> str:
    return (f"within {tol.accuracy_drop_points:g} top-1 point of the float accuracy (reconstruction MSE at most "
            f"{tol.mse_increase_pct:g}% above it for models without labels)")


def judge_transfer(max_abs_diff: float, tol: Tolerances) -> str:
    """The weight-transfer twin (Keras with the PyTorch weights) vs PyTorch: "" or the miss and its size."""
    if max_abs_diff <= tol.transfer_atol + EPS:
        return ""
    return f"weight transfer max abs diff {max_abs_diff:.3g} > {tol.transfer_atol}"


# ---------------------------------------------------------------- the emulated device, the probes

def judge_device(m: dict, int8: bool, rule: DeviceRule = DEVICE) -> list[str]:
    """The device's checks that failed, from `bench/device.compare`'s metrics (guest vs host)."""
    failed = []
    if int8:
        if m["top1_agreement"] < rule.int8_top1 - EPS:
            failed.append(f"top-1 agreement {m['top1_agreement']:.3f} != {rule.int8_top1:g}"
                          if rule.int8_top1 == 1 else
                          f"top-1 agreement {m['top1_agreement']:.3f} < {rule.int8_top1:g}")
        if m["max_abs_diff_steps"] > rule.int8_steps + rule.step_eps:
            failed.append(f"max abs diff {m['max_abs_diff_steps']:.4f} quantization steps > {rule.int8_steps:g} "
                          f"(step {m['quant_step']:.3g})")
    elif m["max_abs_diff"] > rule.float_rel * m["output_scale"]:
        failed.append(f"max abs diff {m['max_abs_diff']:.3g} > {rule.float_rel} x output scale {m['output_scale']:.3g}")
    return failed


def device_value_bound(m: dict, int8: bool, rule: DeviceRule = DEVICE) -> float:
    """The largest |guest - host| a value may have under `judge_device` (in output units): a mismatch's
    evidence marks the values beyond it (`pipeline/explain`)."""
    return (rule.int8_steps + rule.step_eps) * m["quant_step"] if int8 else rule.float_rel * m["output_scale"]


def probe_value_bound(quant: str, scale: float, step: float, rule: ProbeRule = PROBE) -> float:
    """The largest |difference| a probe output's value may have under `judge_probe_output`: float
    relative to the output's scale, int8 in output quantization steps (a mismatch's evidence marks the
    values beyond it: `pipeline/explain`)."""
    return rule.float_rel[quant] * scale if quant in rule.float_rel else rule.int8_steps * step


def judge_probe_output(k: int, quant: str, mad: float, scale: float, step: float, sqnr: float,
                       rule: ProbeRule = PROBE) -> str:
    """A probe output's miss ("" when it matches): float by max abs diff relative to the output's
    scale, int8 within so many output quantization steps or a high enough SQNR."""
    if quant in rule.float_rel:
        if mad > probe_value_bound(quant, scale, step, rule):
            return (f"output {k}: max abs diff {mad:.3g} = {mad / scale:.2g} x output scale > "
                    f"{rule.float_rel[quant]:g} ({quant})")
        return ""
    if mad > probe_value_bound(quant, scale, step, rule) and sqnr < rule.int8_sqnr_db:
        return (f"output {k}: max abs diff {mad:.3g} = {mad / step:.1f} int8 steps, "
                f"SQNR {sqnr:.1f} dB < {rule.int8_sqnr_db:g} dB ({quant})")
    return ""
