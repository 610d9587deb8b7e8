"""Report section "Where int8 loses accuracy": per model, every int8 artifact vs its fp32 sibling with
delegation coverage (share of operators and of time outside the delegate), the top-5 layers by error
per stack, and the recovery plans with the best one marked. Reads the `quant_debug` records written by
`python -m pipeline quant-debug MODEL`.
"""
from __future__ import annotations

import math

from pipeline.artifact import ArtifactId
from pipeline.quant.plans import DEBUGGED, best_plan, loss, loss_limit, within
from pipeline.report.table import table
from pipeline.report.view import View
from pipeline.schema import Record

STACKS = tuple(DEBUGGED)   # the int8 paths with a per-layer debugger and recovery plans


def _f(v, spec=".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _sqnr(v) -> str:
    # no error at all: the node is not quantized (e.g. a GRU PT2E leaves in fp32) or is exact (pad)
    return "inf (no error: not quantized or exact)" if v == float("inf") else _f(v)


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.0f}%"


def _quality(view: View, r: Record) -> tuple[str, str]:
    """(this record's quality, its fp32 sibling's), formatted for the model's metric."""
    q = view.quality(r)
    spec = ".4f" if q.metric == "accuracy" else ".4g"
    return _f(q.value, spec), _f(q.reference, spec)


def _artifacts(view: View, recs: list[Record]) -> list[str]:
    rows = []
    for r in sorted((r for r in recs if ":" not in r.path and r.runtime), key=lambda r: (r.path, r.source)):
        if r.status != "ok":
            rows.append([ArtifactId.of(r).stem, r.runtime, f"{r.status}: `{r.error}`"] + [""] * 7)
            continue
        m = r.metrics
        q, fq = _quality(view, r)
        rows.append([ArtifactId.of(r).stem, r.runtime, q, fq, _f(loss(m)), f"{m['size_bytes'] / 1024:.1f}",
                     _f(m.get('latency_p50_ms'), '.3f'), _pct(m.get('ops_outside_share')),
                     f"{_pct(m.get('time_outside_share'))} ({r.info.get('time_outside_kind', '–')})",
                     ", ".join(r.info.get("not_delegated", [])) or "–"])
    if not rows:
        return []
    return ["Exported int8 artifacts vs their fp32 sibling (same source, same runtime, whole held-out set; "
            "loss = accuracy points, or % more reconstruction MSE; time outside: ExecuTorch measured "
            "from ETDump, TFLite estimated by prefix timing):", ""] + table(
        ["int8 artifact", "runtime", "int8 (accuracy 0-1, or MSE)", "fp32 (same unit)", "loss (points, or % MSE)",
         "KiB", "p50 ms", "ops outside delegate",
         "time outside delegate", "ops outside"], rows)


def _per_layer(rows: list[dict]) -> list[dict]:
    """Worst row per layer (an unrolled layer, e.g. a GRU in TFLite, has many ops of one name)."""
    worst: dict[str, dict] = {}
    count: dict[str, int] = {}
    for x in rows:
        count[x["layer"]] = count.get(x["layer"], 0) + 1
        if x["layer"] not in worst or x["sqnr_db"] < worst[x["layer"]]["sqnr_db"]:
            worst[x["layer"]] = x
    return [{**x, "op": x["op"] if count[n] == 1 else f"{x['op']} x{count[n]}"} for n, x in worst.items()]


def section(view: View) -> list[str]:
    qrecs = view.kind("quant_debug")
    if not qrecs:
        return []
    lines = ["## Where int8 loses accuracy (quant-debug)", "",
             "Per-layer error of the same weights quantized by each stack (TFLite: QuantizationDebugger on "
             "the keras_tw twin, each layer's own error; ExecuTorch: PT2E numeric debugger, error "
             "accumulated up to the layer vs fp32). Lower SQNR = worse. Plans: quality with the real "
             "runtime on the whole held-out set, p50 in-process at 1 thread. "
             "`python -m pipeline quant-debug MODEL` prints the full joined table.", ""]
    for model in sorted({r.model for r in qrecs}):
        mrecs = [r for r in qrecs if r.model == model]
        tol = view.tolerances(model)
        lines += [f"### {model}", ""] + _artifacts(view, mrecs)
        for r in sorted((r for r in mrecs if ":" not in r.path and not r.runtime), key=lambda r: r.path):
            if r.status != "ok":
                lines.append(f"- {ArtifactId.of(r).stem}: {r.status}: `{r.error}`")
                continue
            top = sorted(_per_layer(r.info["layers"]), key=lambda x: x["sqnr_db"])[:5]
            lines += ["", f"**{ArtifactId.of(r).stem}** — top-5 layers by error ({r.info.get('debugger')}, "
                      f"{r.info.get('error_kind')}, {r.info.get('debug_samples')} samples)", ""]
            lines += table(["layer", "op", "SQNR dB", "MSE (layer output units²)", "max abs err (output units)"],
                           [[x["layer"], x["op"], _sqnr(x["sqnr_db"]), _f(x["mse"], ".3g"),
                             _f(x["max_abs_error"], ".3g")] for x in top])[:-1]
        lines.append("")
        plans = [r for r in mrecs if ":" in r.path]
        if plans:
            best = {b.path for b in (best_plan(plans, p, tol) for p in STACKS) if b}
            rows = []
            for r in plans:
                if r.status != "ok":
                    rows.append([r.path, None, f"{r.status}: `{r.error}`"] + [""] * 5)
                    continue
                m = r.metrics
                q, _ = _quality(view, r)
                mark = " **(best)**" if r.path in best else ""
                rows.append([f"{r.path}{mark}", r.runtime, q, _f(loss(m)), f"{m['size_bytes'] / 1024:.1f}",
                             _f(m.get('latency_p50_ms'), '.3f'), _pct(m.get('ops_outside_share')),
                             _pct(m.get('time_outside_share'))])
            lines += [f"Recovery plans (best = smallest within {tol.accuracy_drop_points:g} point / "
                      f"{tol.mse_increase_pct:g}% of fp32, else least loss):", ""]
            lines += table(["plan", "runtime", "quality (accuracy 0-1, or MSE)", "loss (points, or % MSE)", "KiB",
                            "p50 ms", "ops outside delegate",
                            "time outside delegate"], rows)
            lines += _why_not_recovered(mrecs, plans, tol)
    return lines


def _why_not_recovered(mrecs: list[Record], plans: list[Record], tol) -> list[str]:
    """For a stack whose best plan still misses the limit: how spread its per-layer error is."""
    out = []
    for stack in STACKS:
        best = best_plan(plans, stack, tol)
        plain = next((r for r in plans if r.path == f"{stack}:int8" and r.status == "ok"), None)
        if best is None or plain is None or within(best.metrics, tol):
            continue
        table_rec = next((r for r in mrecs if r.path == stack and r.status == "ok" and not r.runtime
                          and "layers" in r.info and r.source == DEBUGGED[stack][0]), None)
        sq = sorted(x["sqnr_db"] for x in _per_layer(table_rec.info["layers"])) if table_rec else []
        sq = [v for v in sq if v == v and v != float("inf")]
        l0, l1 = loss(plain.metrics), loss(best.metrics)
        text = (f"- {stack}: no plan reaches {loss_limit(best.metrics, tol):g} (point or % MSE): plain int8 loses "
                f"{l0:.2f}, the best plan ({best.path.split(':', 1)[1]}) {l1:.2f}, recovering "
                f"{max(0.0, (l0 - l1) / l0 * 100) if l0 > 0 else 0:.0f}% of it.")
        if len(sq) >= 2:
            text += (f" Its {len(sq)} quantized layers' SQNR spans {sq[0]:.1f}-{sq[-1]:.1f} dB: the error is "
                     "spread over every layer, not concentrated in a few, so keeping the worst layers in float "
                     "removes only their share (the other plans above do no better).")
        out.append(text)
    return out + ([""] if out else [])
