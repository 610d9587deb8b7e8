"""Report section: what to ship on iOS, per model, from the bench records alone.

    python -m pipeline report     # "What to ship on iOS" in results/report.md

Verified candidates first: the artifacts an iOS app can load (`choose.PLATFORMS["ios"]`: Core AI
`.aimodel`, LiteRT `.tflite`, ExecuTorch `.pte`) measured `ok` in that format's runtime on the model's
first profile and within its quality reference (`ship.within_reference`, the rule "What should I ship?"
uses). Among them the package's rule (`choose.NATIVE_FIRST`): Core AI files first, the smallest and the
fastest of them, then the LiteRT/ExecuTorch fallback; host timings are never compared across runtimes
(Core AI's Linux CPU runtime and LiteRT on this x86 host are not an iPhone's Neural Engine, GPU or CPU).
Then what was exported but cannot be verified here (Core ML: runs on Apple devices only).
"""
from __future__ import annotations

from pipeline.artifact import ArtifactId
from pipeline.package.choose import NATIVE_FIRST
from pipeline.provenance import record_id
from pipeline.report.picks import candidates
from pipeline.report.table import table
from pipeline.report.view import View

TITLE = "What to ship on iOS"
PLATFORM = "ios"


def _rows(view: View, model: str) -> tuple[list[list], int]:
    native, other = candidates(view, model, PLATFORM)    # the eligible files, as "At a glance" picks among
    rows = []
    for tier, group in (("Core AI", native), ("fallback", other)):
        if not group:
            continue
        smallest = min(group, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_p50_ms"]))
        fastest = min(group, key=lambda r: (r.metrics["latency_p50_ms"], r.metrics["size_bytes"]))
        # a verified .aimodel exists: the fallback is only named (its smallest)
        picks = [smallest] + ([fastest] if fastest is not smallest and not (tier == "fallback" and native) else [])
        for r in picks:
            role = " and ".join(n for n, x in (("smallest", smallest), ("fastest here", fastest)) if x is r)
            m, q = r.metrics, view.quality(r)
            rows.append([f"**{tier}: {role}**", ArtifactId.of(r).stem, r.runtime, r.quantization,
                         f"{m['size_bytes'] / 1024:.1f}", f"{m.get('size_zipped_bytes', 0) / 1024:.1f}",
                         f"{m['latency_p50_ms']:.3f}",
                         f"{q.value * 100:.2f}%" if q.metric == "accuracy" and q.value is not None else
                         (f"{q.value:.4g}" if q.value is not None else "–"), f"`{record_id(r)}`"])
    return rows, len(native)


def section(view: View) -> list[str]:
    models = view.models("bench")
    # results without any Core AI path (older runs, --paths without them) keep the report they had
    if not any(r.format in NATIVE_FIRST[PLATFORM] for r in view.kind("export")):
        return []
    lines = [f"## {TITLE}", "",
             "Verified first: Core AI `.aimodel` files that Core AI's own runtime ran here with parity, then "
             "LiteRT/ExecuTorch files an iOS app can embed; Core ML files are listed apart, exported but not "
             "verified on this host (Core ML runs on Apple devices only). Timings are Core AI's CPU runtime on "
             "this x86 Linux host and LiteRT/ExecuTorch on the same host: not an iPhone's CPU, GPU or Neural "
             "Engine, so they rank files of one runtime and are never compared across runtimes (the package's "
             "rule, `pipeline/package/choose.py`).", ""]
    for model in models:
        prof = view.first_profile(model)
        if not prof:
            continue
        rows, n_native = _rows(view, model)
        exported = [r for r in view.kind("export") if r.model == model and r.format in NATIVE_FIRST[PLATFORM]]
        # the "runs elsewhere" family (`<device>_only`): exported, nothing ran it here
        apple = sorted({ArtifactId.of(r).stem for r in view.kind("bench")
                        if r.model == model and r.status.endswith("_only")})
        lines += [f"### {model}", ""]
        if not exported:
            lines += ["No Core AI path ran for this model.", ""]
        elif not n_native:
            bad = "; ".join(f"`{ArtifactId.of(r).stem}` {r.status}" + (f" ({r.error})" if r.error else "")
                            for r in exported if r.status != "ok")
            lines += [f"No Core AI file is verified within the quality reference on `{prof}`"
                      + (f" ({bad})" if bad else "") + ": the fallback ships.", ""]
        if rows:
            lines += table(["pick", "artifact", "runtime", "quantization", "KiB", "zipped KiB", f"p50 ms {prof}",
                            "quality", "record"], rows)
        if apple:
            lines += [f"Not verified on this host (Core ML, runs on Apple devices only): "
                      + ", ".join(f"`{a}`" for a in apple) + ".", ""]
    return lines
