""""What should I ship?": per model, picked from the bench records alone.

    python -m pipeline report     # the section appears under each model in results/report.md

Candidates are the artifacts (x runtime) measured ok on the model's first device profile whose
quality stays within `ACCURACY_POINTS` of the model's best float reference (the most accurate of its
twins: shipping a less accurate twin is a loss too), or, for models without labels, whose
reconstruction MSE stays within `MSE_RATIO` of the best reference. Among them: the smallest, the fastest, and the fastest per framework.
"""
from __future__ import annotations

from pipeline.report.plots import artifact_name, profiles_of
from pipeline.provenance import record_id
from pipeline.schema import Record

ACCURACY_POINTS = 1.0      # percentage points below the reference accuracy still acceptable
MSE_RATIO = 1.05           # reconstruction MSE at most 5 % above the reference


def best_reference(rs: list[Record]) -> tuple[str, float] | None:
    """("accuracy" | "reconstruction_mse", the best twin's reference value) over the records."""
    acc = [r.metrics["reference_accuracy"] for r in rs if "reference_accuracy" in r.metrics]
    if acc:
        return "accuracy", max(acc)
    mse = [r.metrics["reference_reconstruction_mse"] for r in rs if "reference_reconstruction_mse" in r.metrics]
    return ("reconstruction_mse", min(mse)) if mse else None


def within_reference(r: Record, ref: tuple[str, float] | None) -> bool:
    if ref is None or ref[0] not in r.metrics:
        return False
    if ref[0] == "accuracy":
        return r.metrics["accuracy"] >= ref[1] - ACCURACY_POINTS / 100 - 1e-12
    return r.metrics["reconstruction_mse"] <= ref[1] * MSE_RATIO


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
    ref = best_reference(rs)
    good = [r for r in rs if within_reference(r, ref)]
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
    lines += [f"Among the {len(good)} artifact x runtime measurements within {ACCURACY_POINTS:g} point of the "
              f"best twin's float accuracy (reconstruction MSE within {(MSE_RATIO - 1) * 100:.0f}% of the best "
              f"for models without labels); latency on profile `{prof}`. \"best <framework>\" = the fastest "
              "of that framework; \"ref\" = the artifact's own twin.", "",
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
