"""Report section "Where int8 loses accuracy": top-5 layers by error per stack, delegation coverage of
the int8 artifacts, and the recovery plans with the best one marked. Reads `quant_debug` records
written by `python -m pipeline quant-debug MODEL` (plus export/bench records for delegation).
"""
from __future__ import annotations

from pipeline.schema import Record


def _f(v, spec=".2f") -> str:
    return "–" if v is None else format(v, spec)


def _delegation(records: list[Record], model: str) -> list[str]:
    rows = []
    for r in records:
        if r.model != model or r.status != "ok" or r.quantization != "int8":
            continue
        if r.kind == "export" and r.format == "pte" and "delegated_ops" in r.info:
            d, n = r.info["delegated_ops"], r.info["non_delegated_ops"]
        elif r.kind == "bench" and r.runtime == "litert" and "delegated_ops" in r.info:
            d, n = r.info["delegated_ops"], r.info["non_delegated_ops"]
        else:
            continue
        share = n / (d + n) if d + n else 0.0
        rows.append(f"| {r.source}__{r.path} | {r.runtime or 'executorch (export record)'} | {d} | {n} | "
                    f"{100 * share:.0f}% | {', '.join(r.info.get('not_delegated', [])) or '–'} |")
    if not rows:
        return ["Delegation coverage: no export/bench records with delegation facts for the int8 artifacts.", ""]
    return ["| int8 artifact | from | delegated ops | outside delegate | share outside | ops outside |",
            "|---|---|---|---|---|---|", *sorted(set(rows)), ""]


def section(records: list[Record]) -> list[str]:
    from pipeline.quant_recover import best_plan
    qrecs = [r for r in records if r.kind == "quant_debug"]
    if not qrecs:
        return []
    lines = ["## Where int8 loses accuracy (quant-debug)", "",
             "Per-layer error of the same weights quantized by each stack (TFLite: QuantizationDebugger on "
             "the keras_tw twin, each layer's own error; ExecuTorch: PT2E numeric debugger, error "
             "accumulated up to the layer vs fp32). Lower SQNR = worse. Plans: accuracy with the real "
             "runtime on the whole held-out set, p50 in-process at 1 thread.", ""]
    for model in sorted({r.model for r in qrecs}):
        lines += [f"### {model}", ""]
        for r in sorted((r for r in qrecs if r.model == model and ":" not in r.path), key=lambda r: r.path):
            if r.status != "ok":
                lines.append(f"- {r.source}__{r.path}: {r.status}: `{r.error}`")
                continue
            top = sorted(r.info["layers"], key=lambda x: x["sqnr_db"])[:5]
            lines += ["", f"**{r.source}__{r.path}** — top-5 layers by error ({r.info.get('debugger')}, "
                      f"{r.info.get('error_kind')}, {r.info.get('debug_samples')} samples)", "",
                      "| layer | op | SQNR dB | MSE | max abs err |", "|---|---|---|---|---|"]
            lines += [f"| {x['layer']} | {x['op']} | {_f(x['sqnr_db'])} | {_f(x['mse'], '.3g')} | "
                      f"{_f(x['max_abs_error'], '.3g')} |" for x in top]
        lines += ["", "Delegation coverage of the int8 artifacts:", ""] + _delegation(records, model)
        plans = [r for r in qrecs if r.model == model and ":" in r.path]
        if plans:
            best = {b.path for b in (best_plan(plans, p) for p in ("tflite_int8", "et_xnnpack_int8")) if b}
            lines += ["| plan | runtime | quality | drop (points) | KiB | p50 ms | ops outside delegate |",
                      "|---|---|---|---|---|---|---|"]
            for r in plans:
                if r.status != "ok":
                    lines.append(f"| {r.path} | – | {r.status}: `{r.error}` | | | | |")
                    continue
                m = r.metrics
                q = m.get("accuracy", m.get("reconstruction_mse"))
                mark = " **(best)**" if r.path in best else ""
                lines.append(f"| {r.path}{mark} | {r.runtime} | {_f(q, '.4f')} | "
                             f"{_f(m.get('accuracy_drop_points'))} | {m['size_bytes'] / 1024:.1f} | "
                             f"{_f(m.get('latency_p50_ms'), '.3f')} | {_f(m.get('non_delegated_ops'), '.0f')} |")
            lines.append("")
    return lines
