""""What should I ship?": per model, picked from the bench records alone.

    python -m pipeline report     # the section appears under each model in results/report.md

Candidates are the artifacts (x runtime) measured ok on the model's first device profile whose
quality stays within `ACCURACY_POINTS` of the float model they were exported from (their own
twin's reference accuracy), or, for models without labels, whose reconstruction MSE stays within
`MSE_RATIO` of the reference. Among them: the smallest, the fastest, and the fastest per framework.
"""
from __future__ import annotations

from pipeline.plots import artifact_name, profiles_of
from pipeline.provenance import record_id
from pipeline.schema import Record

ACCURACY_POINTS = 1.0      # percentage points below the reference accuracy still acceptable
MSE_RATIO = 1.05           # reconstruction MSE at most 5 % above the reference


def within_reference(r: Record) -> bool | None:
    """True/False when the record carries a quality metric and its reference; None otherwise."""
    m = r.metrics
    if "accuracy" in m and "reference_accuracy" in m:
        return m["accuracy"] >= m["reference_accuracy"] - ACCURACY_POINTS / 100 - 1e-12
    if "reconstruction_mse" in m and "reference_reconstruction_mse" in m:
        return m["reconstruction_mse"] <= m["reference_reconstruction_mse"] * MSE_RATIO
    return None


def _quality(r: Record) -> str:
    m = r.metrics
    if "accuracy" in m:
        return f"{m['accuracy'] * 100:.2f}% (ref {m.get('reference_accuracy', float('nan')) * 100:.2f}%)"
    if "reconstruction_mse" in m:
        return f"MSE {m['reconstruction_mse']:.4g} (ref {m.get('reference_reconstruction_mse', float('nan')):.4g})"
    return "–"


def picks(records: list[Record], model: str) -> tuple[str, list[tuple[str, Record]], list[Record]]:
    """(profile, [(role, record)], candidates). Latency comes from the first profile's records,
    which are also the ones that carry accuracy/agreement (evaluated once per artifact)."""
    profs = profiles_of(records, model)
    if not profs:
        return "", [], []
    prof = profs[0]
    rs = [r for r in records if r.kind == "bench" and r.model == model and r.profile == prof
          and r.status == "ok" and "latency_p50_ms" in r.metrics and "size_bytes" in r.metrics]
    good = [r for r in rs if within_reference(r)]
    if not good:
        return prof, [], []
    fastest = lambda xs: min(xs, key=lambda r: (r.metrics["latency_p50_ms"], r.metrics["size_bytes"]))  # noqa: E731
    out = [("smallest", min(good, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_p50_ms"]))),
           ("fastest", fastest(good))]
    for fw in sorted({r.framework for r in good}):
        out.append((f"best {fw}", fastest([r for r in good if r.framework == fw])))
    return prof, out, good


def ship_section(records: list[Record], model: str) -> list[str]:
    prof, chosen, good = picks(records, model)
    lines = ["### What should I ship?", ""]
    if not prof:
        return lines + ["No successful measurements for this model yet.", ""]
    if not chosen:
        return lines + [f"No artifact stays within {ACCURACY_POINTS:g} point(s) of its reference quality "
                        f"on profile `{prof}`: see the table below and the support matrix.", ""]
    lines += [f"Among the {len(good)} artifact x runtime measurements within {ACCURACY_POINTS:g} point of their "
              f"reference accuracy (MSE within {(MSE_RATIO - 1) * 100:.0f}% for models without labels); "
              f"latency on profile `{prof}`. \"best <framework>\" = the fastest of that framework.", "",
              "| pick | artifact | runtime | KiB | zipped KiB | p50 ms | p90 ms | quality | top-1 agree | record |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for role, r in chosen:
        m = r.metrics
        agree = f"{m['top1_agreement'] * 100:.2f}%" if "top1_agreement" in m else "–"
        lines.append(f"| **{role}** | {artifact_name(r)} | {r.runtime} | {m['size_bytes'] / 1024:.1f} | "
                     f"{m.get('size_zipped_bytes', 0) / 1024:.1f} | {m['latency_p50_ms']:.3f} | "
                     f"{m.get('latency_p90_ms', float('nan')):.3f} | {_quality(r)} | {agree} | "
                     f"`{record_id(r)}` |")
    return lines + [""]
