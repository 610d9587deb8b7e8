"""Report sections on benchmark rigor: full metrics per profile, stability, harness fixed cost, peer
check against LiteRT's own benchmark, compute cost, top operators. Plugged in via report.SECTIONS.

    .venv/bin/python -m pipeline report     # results/report.md includes these sections
"""
from __future__ import annotations

from pipeline.parity import PEER_AGREEMENT, eval_prefix
from pipeline.report.table import fmt, table
from pipeline.report.view import View, label
from pipeline.schema import Record


def _ok_bench(view: View) -> list[Record]:
    return sorted(view.bench_ok(), key=lambda r: (label(r), r.runtime, r.profile))


def metricstable(view: View) -> list[str]:
    bench = _ok_bench(view)
    if not bench:
        return []
    lines = ["## Full benchmark metrics (per artifact, runtime, device profile)", "",
             "**These are host measurements under device-profile constraints (CPU affinity, thread count, "
             "address-space limit) on the machine named above, not phone timings.** Absolute numbers on a "
             "phone differ (other cores, caches, clocks, thermal limits); the comparison between artifacts "
             "and runtimes on one machine is what these support.", "",
             "Timed call: inputs bound once, the inference call alone (LiteRT `invoke()`, ExecuTorch "
             "`execute()`, lite-interpreter `forward`), as the runtimes' own benchmark tools time it; "
             "`p50 +IO` adds input conversion and output copy per call. Latency statistics pool "
             f"the repeats; `spread %` = (max - min) / median of the repeats' medians. `fixed us` = p50 "
             "of a one-op model (x + 1 on one float) in the same runtime and profile: this harness's + "
             "runtime's fixed cost per call, to read small latencies against. `RSS+ MB` = peak RSS above "
             "the worker's baseline before loading. GFLOP/s = the PyTorch twin's FLOPs / p50. `ci %` = half "
             "the 95% confidence interval of the median of the least precise repeat, in % of it.", ""]
    lines += stop_rule_lines(view)
    header = ["artifact", "runtime", "profile", "p50 ms", "p90 ms", "p99 ms", "mean ms", "min ms", "cv (std/mean)",
              "spread %", "ci %", "repeats x runs", "p50 +IO ms", "fixed us", "load ms", "RSS+ MB", "KiB", "zip KiB",
              "GFLOP/s"]
    rows = []
    for r in bench:
        m = r.metrics
        rows.append([label(r), r.runtime, r.profile, m.get("latency_p50_ms"), m.get("latency_p90_ms"),
                     m.get("latency_p99_ms"), m.get("latency_mean_ms"), m.get("latency_min_ms"),
                     m.get("latency_cv"), m.get("latency_p50_spread_pct"), m.get("latency_p50_ci_pct"),
                     f"{int(m.get('repeats', 1))} x {int(m.get('runs', 0) / max(m.get('repeats', 1), 1))}",
                     m.get("latency_p50_with_io_ms"), m.get("trivial_model_p50_us"), m.get("load_ms"),
                     m.get("peak_rss_above_baseline_mb"), m.get("size_bytes", 0) / 1024,
                     m.get("size_zipped_bytes", 0) / 1024, m.get("gflops_per_s")])
    lines += table(header, rows)
    spreads = [r.metrics["latency_p50_spread_pct"] for r in bench if "latency_p50_spread_pct" in r.metrics]
    loops = [r.metrics["harness_overhead_us"] for r in bench if "harness_overhead_us" in r.metrics]
    if spreads:
        lines += [f"Stability: median spread of the repeats' p50 {fmt(sorted(spreads)[len(spreads) // 2])} %, "
                  f"worst {fmt(max(spreads))} %. The timing loop itself (perf_counter pair) costs "
                  f"{fmt(sorted(loops)[len(loops) // 2] if loops else None)} us per call.", ""]
    return lines


def stop_rule_lines(view: View) -> list[str]:
    """How long each timing repeat ran: the stopping rule, stated from the settings the run recorded."""
    from pipeline.bench.stopping import Rule, describe
    settings = view.run.info.get("bench_settings") if view.run else None
    if not settings:
        return ["(The run record holds no bench settings: results from before they were recorded.)", ""]
    rule = Rule(*(settings[k] for k in ("min_runs", "min_seconds", "max_runs", "max_seconds")),
                settings.get("ci_pct", 0.0))
    lines = [f"{describe(rule)} Repeats: {settings['repeats']} on the first profile, {settings['other_repeats']} "
             f"on the others; {settings['warmup']} warm-up runs before them."]
    once = settings.get("one_profile_runtimes") or settings.get("compat_runtimes") or []
    if once:
        lines[0] += (f" Measured on the first profile only, {settings['other_repeats']} repeat: "
                     f"{', '.join(once)} (`BenchConfig.one_profile_runtimes` says why for each).")
    lines += ["", *eval_rule_lines(view, settings)]
    return lines


def eval_rule_lines(view: View, settings: dict) -> list[str]:
    """How much of the eval set each artifact's quality figures are on: the whole set, except that the
    eval pass of a slow artifact stops at its time budget; which artifacts that happened to."""
    budget, least = settings.get("eval_max_seconds", 0.0), settings.get("eval_min_samples", 0)
    if not budget:
        return []
    short = sorted({(label(r), r.runtime, eval_prefix(r.metrics)) for r in view.kind("bench")
                    if eval_prefix(r.metrics)})
    text = (f"Parity and accuracy are computed on the whole eval set, except that the eval pass of a slow "
            f"artifact stops once it has {least} samples and has run {fmt(budget)} s; its figures (and the "
            f"reference's it is compared with) are then on those first samples.")
    text += (f" That happened to {len(short)}: " + "; ".join(f"{a} on {rt} ({p})" for a, rt, p in short) + "."
             if short else " No artifact of this run needed it.")
    return [text, ""]


def peer_section(view: View) -> list[str]:
    peers = [r for r in _ok_bench(view) if "peer_median_ms" in r.metrics]
    errors = [r for r in _ok_bench(view) if "peer_error" in r.info]
    if not peers and not errors:
        return []
    lines = ["## Peer check: our LiteRT median vs LiteRT's own `litert-benchmark`", "",
             "Same .tflite, threads and CPU affinity; the tool (shipped in ai-edge-litert, CompiledModel "
             "API) runs unchanged in its own process except that its 0.01 ms rounding is switched off. "
             "`net diff` compares both net of each harness's fixed cost per call (each measured on the "
             "one-op model): the tool's Python `run_by_name` costs a few us more per call than our bound "
             f"`invoke()`, which is more than 10% of a 20 us model. Agreement = raw or net within "
             f"{PEER_AGREEMENT:.0%}.", ""]
    rows = [[label(r), r.profile, r.metrics["latency_p50_ms"], r.metrics["peer_median_ms"],
             r.metrics.get("peer_diff_pct"), r.metrics.get("trivial_model_p50_us", 0) / 1e3,
             r.metrics.get("peer_trivial_median_ms"), r.metrics.get("peer_net_diff_pct"),
             "yes" if r.metrics.get("peer_agrees") else "NO"] for r in peers]
    lines += table(["artifact", "profile", "ours p50 ms", "tool median ms", "diff %", "ours fixed ms",
                     "tool fixed ms", "net diff %", "agrees"], rows)
    lines += [f"- {label(r)} {r.profile}: peer tool failed: `{r.info['peer_error']}`" for r in errors]
    return lines + [""]


def cost_section(view: View) -> list[str]:
    by_model = {}
    for r in _ok_bench(view):
        if "flops" in r.metrics:
            by_model[r.model] = r.metrics
    if not by_model:
        return []
    lines = ["## Compute cost", "",
             "FLOPs of one batch-1 forward pass of the PyTorch twin (`torch.utils.flop_counter."
             "FlopCounterMode`: convolutions and matmuls; 1 MAC = 2 FLOPs). Achieved GFLOP/s per artifact "
             "is in the full metrics table.", ""]
    run = view.run
    peak = run.metrics if run else {}
    if "cpu_peak_gflops_1_core" in peak:
        lines += [f"This CPU's float32 matmul peak (numpy, 1024^3, measured in this run): "
                  f"{peak['cpu_peak_gflops_1_core']:.1f} GFLOP/s on 1 core, "
                  f"{peak.get('cpu_peak_gflops_all_cores', 0):.1f} GFLOP/s on all cores; the last column "
                  "is the best achieved GFLOP/s of any artifact of the model on one core, as a share of it (above 100% "
                  "means the machine was busier while the peak was measured than during that artifact's run).", ""]
    best = {}
    for r in _ok_bench(view):
        if r.threads == 1 and "gflops_per_s" in r.metrics:
            best[r.model] = max(best.get(r.model, 0.0), r.metrics["gflops_per_s"])
    one = peak.get("cpu_peak_gflops_1_core")
    rows = [[m, v["flops"] / 1e6, v["macs"] / 1e6, int(v["params"]), best.get(m),
             f"{100 * best[m] / one:.1f}%" if one and m in best else "–"] for m, v in sorted(by_model.items())]
    return lines + table(["model", "MFLOPs", "MMACs", "parameters", "best GFLOP/s (1 thread)",
                           "share of 1-core peak"], rows)


def op_profile_section(view: View) -> list[str]:
    prof = [r for r in _ok_bench(view) if r.info.get("op_profile")]
    if not prof:
        return []
    lines = ["## Top operators by time (first device profile)", "",
             "Each runtime's best available per-operator timer: `.pte` ExecuTorch ETDump read by "
             "`executorch.devtools.Inspector` (the PyPI runtime has the event tracer; XNNPACK reports its "
             "own operators); `.ptl` `torch.profiler` self CPU time; `.tflite` per-operator timing (LiteRT's "
             "Python interpreter has no per-operator timer and `litert-benchmark` has no op profiling): "
             "each operator cut out into a one-operator model and timed alone, minus invoke()'s fixed "
             "cost, an estimate (no cross-operator fusion: an explicit PAD that XNNPACK folds into the "
             "next convolution shows its stand-alone cost).", ""]
    rows = []
    for r in prof:
        p = r.info["op_profile"]
        if not p.get("ops"):
            rows.append([label(r), r.runtime, "–", p.get("note") or None, None, None])
            continue
        for i, o in enumerate(p["ops"][:5]):
            rows.append([label(r) if i == 0 else " ", r.runtime if i == 0 else " ", i + 1, o["op"],
                         o["ms"], f"{o['share'] * 100:.0f}%"])
    return lines + table(["artifact", "runtime", "#", "operator", "ms", "share"], rows)


def sections(view: View) -> list[str]:
    return metricstable(view) + peer_section(view) + cost_section(view) + op_profile_section(view)
