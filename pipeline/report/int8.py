"""Report section: int8 vs fp32 per artifact pair, against the targets, with the reason where one misses.

Targets (issue "speed of what it ships"): an int8 artifact is >= 3.5x smaller than its fp32 twin
(same source weights, format and runtime), within the model's `Tolerances.accuracy_drop_points` (1
top-1 point) of its accuracy, and cheaper to run where it ships: judged on the emulated ARM64 core with
the dot-product instruction (`view.ARM_JUDGE_CORE`, net guest instructions fp32 / int8 > 1) when both
artifacts ran there, else on this CPU's p50 (the host ratio is shown beside it). Where it is not, the section says why from the
records themselves: the file's anatomy (how many bytes are weights and how many are per-channel
quantization parameters) and the per-operator profiles of both artifacts (which operator kinds take
longer in int8).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from pipeline import parity
from pipeline.artifact import ArtifactId
from pipeline.parity import INT8_KERNEL_GAIN, INT8_MIN_SPEEDUP, INT8_SIZE_TARGET as SIZE_TARGET, SAME_SIZE_RATIO
from pipeline.bench.profiles import BenchConfig
from pipeline.report import links
from pipeline.report.device import TITLE as DEVICE_TITLE
from pipeline.report.table import table
from pipeline.report.view import ARM_JUDGE_CORE, View
from pipeline.schema import Record

TITLE = "int8 vs fp32: size, speed, accuracy against the targets"


def _f(v, digits=2) -> str:
    return "–" if v is None or v != v else f"{v:.{digits}f}"


def _op_kind(label: str) -> str:
    """'Convolution (NHWC, QC8) IGEMM #3' -> 'Convolution IGEMM'; 'CONV_2D #4' -> 'CONV_2D'."""
    label = re.sub(r"\s*#\d+.*$", "", label)
    label = re.sub(r"\s*\[.*?\]", "", label)
    return re.sub(r"\s*\([^)]*\)", "", label).strip()


def _kinds(r: Record) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for o in (r.info.get("op_profile") or {}).get("ops", []):
        out[_op_kind(o["op"])] += float(o["ms"])
    return out


def slower_ops(f: Record, q: Record, top: int = 3) -> list[tuple[str, float, float]]:
    """Operator kinds whose profiled time grows most from fp32 to int8: [(kind, fp32 ms, int8 ms)]."""
    a, b = _kinds(f), _kinds(q)
    rows = [(k, a.get(k, 0.0), b.get(k, 0.0)) for k in set(a) | set(b)]
    return sorted([r for r in rows if r[2] > r[1]], key=lambda r: r[1] - r[2])[:top]


def size_reason(f: Record, q: Record) -> str:
    m, fm = q.metrics, f.metrics
    if fm["size_bytes"] / m["size_bytes"] < SAME_SIZE_RATIO and "anatomy_int8_bytes" not in m:
        return ("the int8 file is as large as the fp32 one: the quantizer left (almost) every weight in fp32 "
                "(it has no int8 pattern for this model's main layers)")
    if "anatomy_int8_bytes" in m and "anatomy_float32_bytes" in fm:
        w_ratio = fm["anatomy_float32_bytes"] / max(m["anatomy_int8_bytes"], 1)
        return (f"weights alone {w_ratio:.1f}x; the int8 file also holds "
                f"{m['anatomy_quant_param_bytes'] / 1024:.1f} KiB of quantization parameters "
                f"({int(m.get('anatomy_per_channel_scales', 0))} per-channel scales, 12 B each incl. int64 zero "
                f"point), {m.get('anatomy_int32_bytes', 0) / 1024:.1f} KiB int32 bias and "
                f"{m['anatomy_other_bytes'] / 1024:.1f} KiB graph/names")
    params = m.get("params")
    if params:
        over = m["size_bytes"] - params
        return (f"{params / 1024:.1f} KiB of int8 weights at most; the other {over / 1024:.1f} KiB are "
                f"per-channel scales, int32 bias, graph and delegate payload")
    return ""


def speed_reason(f: Record, q: Record) -> str:
    rows = slower_ops(f, q)
    if not rows:
        return "no per-operator profile names a slower operator"
    return "; ".join(f"{k} {a * 1e3:.0f} -> {b * 1e3:.0f} us" for k, a, b in rows)


def ceiling_lines(view: View) -> list[str]:
    """This CPU's int8 vs fp32 kernel ceiling (provenance record of the bench run), read with the table."""
    run = view.run
    if run is None or "cpu_xnnpack_conv_int8_gops" not in run.metrics:
        return []
    a, b = run.metrics["cpu_xnnpack_conv_fp32_gops"], run.metrics["cpu_xnnpack_conv_int8_gops"]
    simd = " ".join(run.info.get("machine", {}).get("simd", [])) or "?"
    text = (f"This CPU's kernel ceiling (LiteRT/XNNPACK, one 1x1 convolution 192 -> 192 on 28x28, one pinned "
            f"core, measured in this run): fp32 {a:.0f} GOP/s, int8 {b:.0f} GOP/s, int8/fp32 = {b / a:.2f}x "
            f"(SIMD: {simd}). ")
    if b / a < INT8_KERNEL_GAIN:
        text += ("Even at their peak, int8 kernels are no faster than fp32 here (without a VNNI dot-product "
                 "instruction x86 int8 GEMM widens to 16 bits), so int8 cannot beat fp32 on compute on "
                 "this machine; on small layers the int8 per-layer costs (requantization, the 3-channel "
                 "stem, depthwise) make it slower. Phones' ARM cores with the dot-product instruction (asimddp) "
                 "run int8 GEMM several times faster than fp32; this machine cannot show that: the ARM64 columns "
                 "count it on an emulated core.")
    return [text, ""]


def arm_ratio(view: View, f: Record, q: Record, core: str) -> float | None:
    """int8 / fp32 net guest instructions per inference on `core` (None unless both ran there ok)."""
    a, b = view.arm_cost(f, core), view.arm_cost(q, core)
    return b / a if a and b is not None else None


def arm_speedup(view: View, f: Record, q: Record, core: str = ARM_JUDGE_CORE) -> float | None:
    """fp32 / int8 net instructions on `core`: > 1 = int8 cheaper (the host's speed-up, in instructions)."""
    r = arm_ratio(view, f, q, core)
    return 1 / r if r else None


def why_they_differ(view: View) -> list[str]:
    """One paragraph: why the ARM ratio and the host ratio disagree, from this run's kernel ceiling
    (the host's measured int8/fp32 peak) and SIMD flags, not from an assumption about the host."""
    run = view.run
    simd = set(run.info.get("machine", {}).get("simd", [])) if run is not None else set()
    if run is not None and "cpu_xnnpack_conv_int8_gops" in run.metrics:
        ratio = run.metrics["cpu_xnnpack_conv_int8_gops"] / run.metrics["cpu_xnnpack_conv_fp32_gops"]
        if ratio < INT8_KERNEL_GAIN:
            host = (f"this host's int8 kernels peak at {ratio:.2f}x fp32 (measured in this run; without a "
                    "VNNI dot-product path x86 int8 GEMM widens to 16 bits), so int8 cannot beat fp32 on "
                    "compute here")
        else:
            vnni = sorted(f for f in simd if "vnni" in f or "amx" in f)
            host = (f"this host's int8 kernels peak at {ratio:.2f}x fp32 (measured in this run"
                    + (f"; it has {', '.join(vnni)}" if vnni else "") + "), so its ratio shows x86's "
                    "int8 path, and small models' per-call and requantization costs, not a phone's")
    else:
        host = "this run did not measure the host's int8/fp32 kernel ceiling, so the host ratio has no yardstick"
    cores = view.cores()
    other = [c for c in cores if c != ARM_JUDGE_CORE]
    return [f"Why the host and ARM64 ratios differ: {host}. Phone cores with the Armv8.2 dot-product "
            f"instruction (`{ARM_JUDGE_CORE}`) multiply four int8 pairs per lane per instruction, which makes "
            f"int8 GEMM several times cheaper than fp32; the speed target is therefore judged on "
            f"`{ARM_JUDGE_CORE}`'s net instructions"
            + (f", and `{'`, `'.join(other)}` (Armv8.0, no dotprod) shows what dotprod buys" if other else "")
            + f". Instructions are not time: see {links.section(DEVICE_TITLE)} for the proxy's limits.", ""]


@dataclass(frozen=True)
class Verdict:
    """One int8 artifact against its fp32 twin: the ratios and whether each target is met."""
    size_x: float                     # fp32 bytes / int8 bytes
    speed_x: float                    # host: fp32 p50 / int8 p50
    arm_x: dict[str, float | None]    # per emulated core: fp32 / int8 net instructions
    judged_on: str                    # where "faster" is judged: the ARM core, or "host"
    ok_size: bool
    ok_quality: bool | None           # None: no quality metric on both
    ok_faster: bool
    quality: str                      # "fp32 / int8" as shown


def judge(view: View, f: Record, q: Record) -> Verdict:
    """The targets applied to one pair (the int8 section and the findings read this)."""
    fm, qm = f.metrics, q.metrics
    size_x = fm["size_bytes"] / qm["size_bytes"]
    speed_x = fm["latency_p50_ms"] / qm["latency_p50_ms"]
    fq, qq = view.quality(f), view.quality(q)
    if fq.metric in parity.QUALITY_METRICS and fq.value is not None and qq.value is not None:
        ok_q = parity.quality_ok(fq.metric, qq.value, fq.value, view.tolerances(q.model))
        qual = f"{fq.value:.3f} / {qq.value:.3f}" if fq.metric == "accuracy" else f"mse {fq.value:.4g} / {qq.value:.4g}"
    else:
        ok_q, qual = None, "–"
    arm_x = {c: arm_speedup(view, f, q, c) for c in view.cores()}
    judged = arm_x.get(ARM_JUDGE_CORE)
    return Verdict(size_x, speed_x, arm_x, ARM_JUDGE_CORE if judged is not None else "host", size_x >= SIZE_TARGET,
                   ok_q, (judged if judged is not None else speed_x) > INT8_MIN_SPEEDUP, qual)


def pairs(view: View) -> list[tuple[Record, Record]]:
    """Every model's (fp32, int8) pairs on its first profile; a one-profile runtime's pairs (the old
    interpreter's compatibility column: measured once) are in the full metrics table only."""
    once = BenchConfig.one_profile_runtimes
    return [(f, q) for model in view.models("bench") for f, q in view.int8_pairs(model) if q.runtime not in once]


def size_by_tier(view: View, ps: list[tuple[Record, Record]]) -> list[str]:
    """Size ratios read per model tier (models/spec.py `tier`): at toy size (15k-200k parameters) fixed
    bytes (per-channel scales, int32 biases, graph) rival the weights, so the ratio is an artifact of
    size; at phone size the weights dominate. The int8 file's weight share (anatomy) says which."""
    by: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for f, q in ps:
        qm = q.metrics
        share = (qm["anatomy_int8_bytes"] / qm["size_bytes"]) if "anatomy_int8_bytes" in qm and qm.get("size_bytes") \
            else None
        by[view._spec_field(q.model, "tier") or "unregistered"].append((f.metrics["size_bytes"] / qm["size_bytes"],
                                                                        share))
    if not by:
        return []
    rows = []
    for tier, xs in sorted(by.items()):
        ratios = sorted(x for x, _ in xs)
        shares = [sh for _, sh in xs if sh is not None]
        rows.append([tier, len(xs), f"{ratios[0]:.2f}", f"{ratios[len(ratios) // 2]:.2f}", f"{ratios[-1]:.2f}",
                     f"{sum(x >= SIZE_TARGET for x in ratios)}/{len(ratios)}",
                     f"{sorted(shares)[len(shares) // 2]:.0%}" if shares else None])
    return ["### Size ratio per model tier", "",
            "The same pairs grouped by the model's tier (`toy`: 15k-200k parameters; `phone`: the sizes phones "
            "run, millions of parameters). At toy size an int8 file is mostly fixed bytes (per-channel scales, "
            "int32 biases, graph), so its ratio says little about a real model; the weight share of the int8 "
            "file (.tflite anatomy) shows it.", ""] + \
        table(["tier", "pairs", "size x min", "size x median", "size x max", f"meet {SIZE_TARGET}x",
               "int8 file that is weights (median, .tflite)"], rows)


def section(view: View) -> list[str]:
    ps = pairs(view)
    if not ps:
        return []
    prof = ps[0][1].profile
    points = {view.tolerances(q.model).accuracy_drop_points for _, q in ps}
    mse = {view.tolerances(q.model).mse_increase_pct for f, q in ps if view.quality(f).metric == "reconstruction_mse"}
    cores = view.cores()
    arm = ARM_JUDGE_CORE in cores
    lines = [f"## {TITLE}", "",
             f"Each int8 artifact beside its fp32 twin (same source weights, format and runtime), profile "
             f"`{prof}`. Targets: size ratio >= {SIZE_TARGET}x, accuracy within "
             f"{'/'.join(f'{p:g}' for p in sorted(points))} top-1 "
             "point" + (f" (reconstruction MSE at most {'/'.join(f'{p:g}' for p in sorted(mse))}% above fp32's)"
                        if mse else "") + ", int8 cheaper to run: "
             + (f"judged on the emulated ARM64 `{ARM_JUDGE_CORE}` core (net guest instructions per inference, "
                f"fp32 / int8 > {INT8_MIN_SPEEDUP:g}) where both artifacts ran there, else on the host p50 (`faster` "
                f"says which: `(host)`); the host speed-up is shown beside it. " if arm else
                f"host speed-up > {INT8_MIN_SPEEDUP:g} (int8 faster; no emulated ARM64 records in these results). ")
             + "GFLOP/s = the PyTorch twin's FLOPs / p50 (the same work "
             "for both precisions). `why` is computed from the records: the int8 file's anatomy when the "
             "size target is missed, and the operator kinds whose profiled time grows most from fp32 to "
             "int8 when it is slower (per-operator profiles, first device profile).", ""]
    rows: list[list] = []
    misses: list[str] = []
    for f, q in ps:
        fm, qm = f.metrics, q.metrics
        v = judge(view, f, q)
        size_x, speed_x, judged, ok_s, ok_t = v.size_x, v.speed_x, v.arm_x.get(ARM_JUDGE_CORE), v.ok_size, v.ok_faster
        mark = lambda ok: "–" if ok is None else ("yes" if ok else "**no**")  # noqa: E731
        name = ArtifactId.of(q).stem
        rows.append([q.model, name, f.path, q.runtime, f"{size_x:.2f}",
                     *(None if v.arm_x[c] is None else f"{v.arm_x[c]:.2f}" for c in cores), f"{speed_x:.2f}",
                     f"{_f(fm.get('gflops_per_s'), 1)} / {_f(qm.get('gflops_per_s'), 1)}", v.quality,
                     mark(ok_s), mark(v.ok_quality), mark(ok_t) + ("" if judged is not None or not arm else " (host)")])
        if not ok_s:
            misses.append(f"- {q.model} {name} [{q.runtime}] size {size_x:.2f}x: {size_reason(f, q)}.")
        if judged is not None and not ok_t:
            misses.append(f"- {q.model} {name} [{q.runtime}] ARM64 {ARM_JUDGE_CORE} speed-up {judged:.2f}x "
                          f"(net instructions {view.arm_cost(f, ARM_JUDGE_CORE):,.0f} -> "
                          f"{view.arm_cost(q, ARM_JUDGE_CORE):,.0f}).")
        elif not ok_t:
            misses.append(f"- {q.model} {name} [{q.runtime}] speed-up {speed_x:.2f}x "
                          f"({fm['latency_p50_ms'] * 1e3:.0f} -> {qm['latency_p50_ms'] * 1e3:.0f} us): "
                          f"{speed_reason(f, q)}.")
    lines += table(["model", "int8 artifact", "fp32 twin", "runtime", "size x (fp32/int8 bytes)",
                    *(f"ARM64 {c} speed-up x (fp32/int8 net instr)" for c in cores),
                    "host speed-up x (fp32/int8 p50)", "GFLOP/s fp32 / int8",
                    "quality fp32 / int8 (accuracy 0-1, or MSE)", "size", "quality", "faster"], rows)
    lines += size_by_tier(view, ps)
    if arm:
        lines += why_they_differ(view)
    lines += ceiling_lines(view)
    if misses:
        lines += ["### Why a target is missed (from the records)", ""] + misses + [""]
    return lines
