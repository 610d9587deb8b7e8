"""Report section: ExecuTorch vs LiteRT for the same weights, by how much and where (per operator kind).

Same weights = the PyTorch twin's: ExecuTorch `torch__et_xnnpack_*`, LiteRT `keras_tw__tflite_*` (the
Keras twin holding the PyTorch weights) and `torch__litert_torch_*` (PyTorch converted to TFLite).
Both get the same care: XNNPACK on both sides, batch-norm folded by both converters, one thread on the
first device profile, the same input, the same timed call (inputs bound, inference alone). Where they
differ, the per-operator profiles (ExecuTorch ETDump events; LiteRT per-operator timing estimates) name the
operator kinds that take the time.
"""
from __future__ import annotations

from pipeline.report.int8 import _kinds
from pipeline.schema import Record

PAIRS = {"fp32": ("et_xnnpack_fp32", ("keras_tw", "tflite_fp32"), ("torch", "litert_torch_fp32")),
         "int8": ("et_xnnpack_int8", ("keras_tw", "tflite_int8"), ("torch", "litert_torch_int8"))}


def _top(r: Record, n: int = 3) -> str:
    ks = sorted(_kinds(r).items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v * 1e3:.0f}" for k, v in ks) or "–"


def section(records: list[Record]) -> list[str]:
    ok = [r for r in records if r.kind == "bench" and r.status == "ok" and "latency_p50_ms" in r.metrics]
    if not ok:
        return []
    prof = sorted({r.profile for r in ok}, key=lambda p: (p != "big-core", p))[0]
    find = {(r.model, r.source, r.path, r.runtime): r for r in ok if r.profile == prof}
    rows = []
    for model in sorted({r.model for r in ok}):
        for prec, (et_path, *lite) in PAIRS.items():
            et = find.get((model, "torch", et_path, "executorch"))
            for src, path in lite:
                lr = find.get((model, src, path, "litert"))
                if et is None or lr is None:
                    continue
                ratio = et.metrics["latency_p50_ms"] / lr.metrics["latency_p50_ms"]
                rows.append(f"| {model} | {prec} | {et.metrics['latency_p50_ms'] * 1e3:.0f} | {src}__{path} | "
                            f"{lr.metrics['latency_p50_ms'] * 1e3:.0f} | {ratio:.2f} | "
                            f"{et.metrics.get('gflops_per_s', float('nan')):.1f} / "
                            f"{lr.metrics.get('gflops_per_s', float('nan')):.1f} | {_top(et)} | {_top(lr)} |")
    if not rows:
        return []
    return ["## ExecuTorch vs LiteRT, same weights", "",
            f"Profile `{prof}`, p50 in microseconds. ExecuTorch = `torch__{{et_xnnpack_fp32,et_xnnpack_int8}}`; "
            "LiteRT = the Keras twin holding the PyTorch weights (`keras_tw__*`) and the litert-torch "
            "conversion (`torch__litert_torch_*`). `ET / LiteRT` > 1 = ExecuTorch is slower. The last two "
            "columns are the top operator kinds by profiled time (us) of each artifact: ExecuTorch's "
            "ETDump events (XNNPACK's own operator names), LiteRT's per-operator estimates (each operator "
            "timed alone).", "",
            "| model | precision | ExecuTorch us | LiteRT artifact | LiteRT us | ET / LiteRT | GFLOP/s ET / LiteRT "
            "| ExecuTorch top ops (us) | LiteRT top ops (us) |", "|" + "---|" * 9] + rows + [""]
