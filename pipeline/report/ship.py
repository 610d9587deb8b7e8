""""What should I ship?": per model, picked from the bench records alone.

    python -m pipeline report     # the section appears under each model in results/report.md

Candidates are the artifacts (x runtime) measured ok on the model's first device profile whose
quality stays within the model's allowance (`Tolerances.accuracy_drop_points`, or for models without
labels `mse_increase_pct`: `parity.quality_ok`) of its best float reference (the best of its twins:
shipping a less accurate twin is a loss too). Among them: the
smallest, the fastest (host p50), the fastest per framework, and the cheapest on ARM64: the fewest net
guest instructions per inference on the emulated dotprod core (`view.ARM_JUDGE_CORE`), among the
candidates that ran there with parity.
"""
from __future__ import annotations

from pipeline import parity
from pipeline.artifact import ArtifactId
from pipeline.package.choose import NATIVE_FIRST
from pipeline.provenance import record_id
from pipeline.report.table import table
from pipeline.report.view import ARM_JUDGE_CORE, Quality, View, generative
from pipeline.schema import Record


def best_reference(view: View, rs: list[Record]) -> Quality | None:
    """The best twin's float reference over the records: Quality(metric, None, reference). A model
    judged by parity alone (detection: SQNR vs its own twin, no reference value) gets
    Quality("sqnr_db", None, None): its candidates are the records that passed parity."""
    if any(view.quality(r).metric == PARITY for r in rs):
        return Quality(PARITY, None, None)
    refs = [q for q in map(view.quality, rs) if q.reference is not None]
    if not refs:
        return None
    metric = "accuracy" if any(q.metric == "accuracy" for q in refs) else refs[0].metric
    vals = [q.reference for q in refs if q.metric == metric]
    return Quality(metric, None, max(vals) if metric == "accuracy" else min(vals))


PARITY = "sqnr_db"      # the reference metric of a model judged by parity with its twin alone


def within_reference(view: View, r: Record, ref: Quality | None) -> bool:
    """Whether a timed (so parity-ok) record is a candidate under the model's reference `ref`."""
    q = view.quality(r)
    if ref is None or q.metric != ref.metric:
        return False
    if ref.metric == PARITY:      # nothing to score beyond parity, which the bench judged already
        return True
    return parity.quality_ok(ref.metric, q.value, ref.reference, view.tolerances(r.model))


def _quality(view: View, r: Record) -> str:
    if generative(r):    # judged on logits and perplexity (pipeline/report/generative.py)
        m = r.metrics
        return (f"ppl {m['perplexity_increase_pct']:+.2f}% vs ref" if "perplexity_increase_pct" in m
                else f"SQNR {m.get('sqnr_db', float('nan')):.1f} dB")
    q = view.quality(r)
    ref = float("nan") if q.reference is None else q.reference
    if q.metric == "accuracy":
        return f"{q.value * 100:.2f}% (ref {ref * 100:.2f}%)"
    if q.metric == "reconstruction_mse":
        return f"MSE {q.value:.4g} (ref {ref:.4g})"
    if q.metric == PARITY:
        return f"SQNR {q.value:.1f} dB"
    return "–"


def picks(view: View, model: str) -> tuple[str, list[tuple[str, Record]], list[Record]]:
    """(profile, [(role, record)], candidates) on the model's first profile."""
    return _picks(view, model)[:3]


def _picks(view: View, model: str) -> tuple[str, list[tuple[str, Record]], list[Record], Quality | None]:
    """`picks`, and the reference the candidates were judged by. The model's first profile's timed
    records are picked from: latency comes from them, and they carry accuracy/agreement (evaluated once
    per artifact)."""
    prof = view.first_profile(model)
    if not prof:
        return "", [], [], None
    # an iOS-only file (Core AI .aimodel) is answered by "What to ship on iOS" (pipeline/report/ios.py)
    rs = [r for r in view.timed(model, prof) if "size_bytes" in r.metrics and r.format not in NATIVE_FIRST["ios"]]
    ref = best_reference(view, rs)
    good = [r for r in rs if within_reference(view, r, ref)]
    if not good:
        return prof, [], [], ref
    fastest = lambda xs: min(xs, key=lambda r: (r.metrics["latency_p50_ms"], r.metrics["size_bytes"]))  # noqa: E731
    out = [("smallest", min(good, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_p50_ms"]))),
           ("fastest", fastest(good))]
    for fw in sorted({r.framework for r in good}):
        out.append((f"best {fw}", fastest([r for r in good if r.framework == fw])))
    on_arm = [r for r in good if view.arm_cost(r, ARM_JUDGE_CORE) is not None]
    if on_arm:
        out.append((f"cheapest on ARM64", min(on_arm, key=lambda r: (view.arm_cost(r, ARM_JUDGE_CORE),
                                                                     r.metrics["size_bytes"]))))
    return prof, out, good, ref


def ship_section(view: View, model: str) -> list[str]:
    prof, chosen, good, ref = _picks(view, model)
    lines = ["### What should I ship?", ""]
    tol = view.tolerances(model)
    points = tol.accuracy_drop_points
    if not prof:
        return lines + ["No successful measurements for this model yet.", ""]
    parity_only = ref is not None and ref.metric == PARITY     # the one rule picks() judged by
    if not chosen:
        bound = (f"passes parity ({_parity_rule()})" if parity_only
                 else f"stays within {points:g} point(s) of its reference quality")
        return lines + [f"No artifact {bound} on profile `{prof}`: see the table below and the support "
                        "matrix.", ""]
    arm = any(role == "cheapest on ARM64" for role, _ in chosen)
    recon = parity_only or ref.metric == "reconstruction_mse"
    within = (f"that pass parity with their twin (no labels to score: {_parity_rule()})" if parity_only
              else f"within {points:g} point of the best twin's float accuracy (reconstruction MSE within "
                   f"{tol.mse_increase_pct:g}% of the best for models without labels)")
    lines += [f"Among the {len(good)} artifact x runtime measurements {within}; latency on profile `{prof}`. "
              "\"best <framework>\" = the fastest of that framework; \"ref\" = the artifact's own twin." +
              (f" \"cheapest on ARM64\" = the fewest net guest instructions per inference on the emulated "
               f"`{ARM_JUDGE_CORE}` core (dotprod), among those that ran there with parity." if arm else ""), ""]
    rows = []
    for role, r in chosen:
        m = r.metrics
        if recon:   # the output is not a class: SQNR vs the reference model instead of top-1 agreement
            agree = f"{m['sqnr_db']:.1f}" if "sqnr_db" in m else "–"
        else:
            agree = f"{m['top1_agreement'] * 100:.2f}%" if "top1_agreement" in m else "–"
        cost = view.arm_cost(r, ARM_JUDGE_CORE)
        rows.append([f"**{role}**", ArtifactId.of(r).stem, r.runtime, f"{m['size_bytes'] / 1024:.1f}",
                     f"{m.get('size_zipped_bytes', 0) / 1024:.1f}", f"{m['latency_p50_ms']:.3f}",
                     f"{m.get('latency_p90_ms', float('nan')):.3f}"] + ([cost] if arm else []) +
                    [_quality(view, r), agree, f"`{record_id(r)}`"])
    return lines + table(["pick", "artifact", "runtime", "KiB", "zipped KiB", "p50 ms", "p90 ms"] +
                         ([f"ARM64 net instr/inference {ARM_JUDGE_CORE}"] if arm else []) +
                         ["quality", "SQNR dB vs reference" if recon else "top-1 agree", "record"], rows)



def _parity_rule() -> str:
    # the floor parity.for_zoo applies to detectors
    return (f"fp32/fp16 within the model's max abs diff, int8 SQNR vs the reference >= "
            f"{parity.DEFAULTS['int8'].min_sqnr_db:g} dB")
