"""Report section: ExecuTorch vs LiteRT for the same weights, by how much and where (per operator kind).

Same weights = the PyTorch twin's: ExecuTorch `torch__et_xnnpack_*`, LiteRT `keras_tw__tflite_*` (the
Keras twin holding the PyTorch weights) and `torch__litert_torch_*` (PyTorch converted to TFLite).
Both get the same care: XNNPACK on both sides, batch-norm folded by both converters, one thread on the
first device profile, the same input, the same timed call (inputs bound, inference alone). Where they
differ, the per-operator profiles (ExecuTorch ETDump events; LiteRT per-operator timing estimates) name the
operator kinds that take the time.
"""
from __future__ import annotations

from export.registry import all_paths, fp32_sibling
from pipeline.artifact import ArtifactId
from pipeline.bench.profiles import BenchConfig
from pipeline.report.int8 import _kinds
from pipeline.report.table import table
from pipeline.report.view import View
from pipeline.runtimes import for_format
from pipeline.schema import Record

# the PyTorch twin's weights: the twin itself and the Keras twin they were copied into
SAME_WEIGHTS = ("torch", "keras_tw")


def _top(r: Record, n: int = 3) -> str:
    ks = sorted(_kinds(r).items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v * 1e3:.0f}" for k, v in ks) or "–"


def _et_paths() -> dict[str, str]:
    """{precision: path} of ExecuTorch's delegated pair: the int8 .pte path and its fp32 sibling."""
    int8 = next(p.name for p in all_paths().values() if p.format == "pte" and p.quantization == "int8")
    return {"fp32": fp32_sibling(int8), "int8": int8}


def section(view: View) -> list[str]:
    if not view.timed():
        return []
    prof = view.first_profile()
    et_rt = for_format("pte")[0]
    lite_rt = next(rt for rt in for_format("tflite") if rt not in BenchConfig.one_profile_runtimes)
    on_prof = view.timed(profile=prof)
    find = {(r.model, r.source, r.path, r.runtime): r for r in on_prof}
    rows = []
    for model in view.models("bench"):
        for prec, et_path in sorted(_et_paths().items()):
            et = find.get((model, "torch", et_path, et_rt))
            lites = sorted({(r.source, r.path) for r in on_prof if r.format == "tflite" and r.quantization == prec
                            and r.source in SAME_WEIGHTS and r.runtime == lite_rt})
            for src, path in lites:
                lr = find.get((model, src, path, lite_rt))
                if et is None or lr is None:
                    continue
                ratio = et.metrics["latency_p50_ms"] / lr.metrics["latency_p50_ms"]
                rows.append([model, prec, f"{et.metrics['latency_p50_ms'] * 1e3:.0f}", ArtifactId.of(lr).stem,
                             f"{lr.metrics['latency_p50_ms'] * 1e3:.0f}", f"{ratio:.2f}",
                             f"{et.metrics.get('gflops_per_s', float('nan')):.1f} / "
                             f"{lr.metrics.get('gflops_per_s', float('nan')):.1f}", _top(et), _top(lr)])
    if not rows:
        return []
    et = _et_paths()
    return ["## ExecuTorch vs LiteRT, same weights", "",
            f"Profile `{prof}`, p50 in microseconds. ExecuTorch = `torch__{{{','.join(et[p] for p in sorted(et))}}}`; "
            "LiteRT = the Keras twin holding the PyTorch weights (`keras_tw__*`) and the litert-torch "
            "conversion (`torch__litert_torch_*`). `ET / LiteRT` > 1 = ExecuTorch is slower. The last two "
            "columns are the top operator kinds by profiled time (us) of each artifact: ExecuTorch's "
            "ETDump events (XNNPACK's own operator names), LiteRT's per-operator estimates (each operator "
            "timed alone).", ""] + table(
        ["model", "precision", "ExecuTorch us", "LiteRT artifact", "LiteRT us", "ET / LiteRT", "GFLOP/s ET / LiteRT",
         "ExecuTorch top ops (us)", "LiteRT top ops (us)"], rows)
