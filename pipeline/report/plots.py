"""The report's plots (matplotlib, Agg backend: no display needed), drawn from the records alone.

    python -m pipeline report      # writes results/plots/*.png, used by report.md and report.html

Each `*_figure` function takes the report's view (`pipeline/report/view.py`) and returns a matplotlib
Figure (or None when there is nothing to draw); `write_all` saves the ones that apply and returns
{name: png path}.
"""
from __future__ import annotations

import os
import textwrap
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from pipeline.artifact import ArtifactId  # noqa: E402
from pipeline.parity import CELL_STATUSES, ELSEWHERE, SEVERITY, STATUS_COLOR  # noqa: E402
from pipeline.report.view import View  # noqa: E402
from pipeline.schema import Record  # noqa: E402

RUNTIME_MARKERS = {"litert": "o", "tflite_runtime": "s", "executorch": "^", "lite_interpreter": "D",
                   "onnxruntime": "P", "coreai": "*", "coreml": "h"}
SOURCE_COLORS = {"torch": "#1f77b4", "keras": "#d62728", "keras_tw": "#ff7f0e"}
FRAMEWORK_COLORS = {"pytorch": "#1f77b4", "tensorflow": "#d62728"}
DPI = 110




def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (smaller is better on both)."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in idx:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def _path_colors(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {n: cmap(i % 20) for i, n in enumerate(sorted(set(names)))}


def _log_axes(ax, which: str, text=lambda v: f"{v:g}") -> None:
    """Log scale with plain tick labels (0.05, 2, 40 rather than 5x10^-2; `text` formats a value); minor
    ticks are labelled too, all of them when the axis spans less than ~1.3 decades, else only 2x and 5x."""
    for axis, setter in (("x", ax.set_xscale), ("y", ax.set_yscale)):
        if axis not in which:
            continue
        setter("log")
        a = ax.xaxis if axis == "x" else ax.yaxis

        def minor(v, _, a=a):
            lo, hi = sorted(a.get_view_interval())
            narrow = lo > 0 and np.log10(hi / lo) < 1.3
            return text(v) if narrow or f"{v:.0e}"[0] in "25" else ""
        a.set_major_formatter(FuncFormatter(lambda v, _: text(v)))
        a.set_minor_formatter(FuncFormatter(minor))


def latency_vs_size_figure(view: View, model: str):
    profs = view.profiles(model)
    if not profs:
        return None
    colors = _path_colors([ArtifactId.of(r).stem for r in view.timed(model)])
    fig, axes = plt.subplots(1, len(profs), figsize=(6.2 * len(profs) + 3.2, 5.2), squeeze=False)
    for ax, prof in zip(axes[0], profs):
        rs = view.timed(model, prof)
        pts = [(r.metrics["size_bytes"] / 1024, r.metrics["latency_p50_ms"]) for r in rs]
        for r, (x, y) in zip(rs, pts):
            ax.scatter(x, y, color=colors[ArtifactId.of(r).stem], marker=RUNTIME_MARKERS.get(r.runtime, "x"),
                       s=55, edgecolor="black", linewidth=0.5, zorder=3)
        front = pareto_front(pts)
        fx = [pts[i][0] for i in front]
        fy = [pts[i][1] for i in front]
        ax.step(fx + [max(p[0] for p in pts) * 1.05], fy + [fy[-1]], where="post", color="black",
                linestyle="--", linewidth=1, zorder=2, label="Pareto front")
        for i in front:
            ax.annotate(f"{ArtifactId.of(rs[i]).stem}\n[{rs[i].runtime}]", pts[i], fontsize=7,
                        xytext=(5, 5), textcoords="offset points")
        _log_axes(ax, "xy")
        ax.set_xlabel("artifact size (KiB, log scale)")
        ax.set_ylabel("latency p50 (ms, log scale)")
        ax.set_title(f"{model}: latency vs size, profile {prof}")
        ax.grid(True, which="both", alpha=0.3)
    handles = [Patch(color=c, label=n) for n, c in colors.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="grey", markeredgecolor="black", label=rt)
                for rt, m in RUNTIME_MARKERS.items() if any(r.runtime == rt for r in view.timed(model))]
    handles.append(Line2D([], [], color="black", linestyle="--", label="Pareto front"))
    axes[0][-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8,
                       title="artifact (color) / runtime (marker)", title_fontsize=8)
    fig.tight_layout()
    return fig


FRAMEWORK_LABEL = {"pytorch": "PyTorch", "tensorflow": "TensorFlow/Keras"}
PICK_STYLE = {"android": ("#2e7d32", "Android pick"), "ios": ("#111111", "iOS pick")}


def _off_arm_reason(view: View, model: str, stem: str) -> str:
    """Why an exported artifact has no ARM64 figure: its device record's cause, the "runs elsewhere" label
    of its host runs, or that nothing ran it there."""
    from pipeline.parity import elsewhere
    from pipeline.report.causes import cause
    dev = [d for d in view.kind("device") if d.model == model and ArtifactId.of(d).stem == stem]
    bad = [d for d in dev if d.status != "ok"]
    if bad:
        return cause(bad[0]).short
    bench = [b for b in view.kind("bench") if b.model == model and ArtifactId.of(b).stem == stem]
    away = next((elsewhere(b.status) for b in bench if elsewhere(b.status)), None)
    if away:
        return f"{away.label}: runs on {away.systems} only"
    if bench and not any(b.status == "ok" for b in bench):
        return f"no host runtime ran it ok ({bench[0].status})"
    return f"no .{bench[0].format if bench else '?'} runtime on the emulated device"


def tradeoff_figure(view: View, model: str):
    """The report's first picture per model: size against cost on the emulated ARM64 judge core (net
    instructions per inference), every artifact a point coloured by framework (marker: runtime), the
    Pareto front, and the Android/iOS picks (`picks.pick`) labelled. Artifacts without an ARM64 figure sit
    in a strip above at their size, with the reason; with no ARM64 figure at all, the host p50 is the cost."""
    from pipeline.report.picks import PLATFORM_NAME, picks
    from pipeline.report.view import ARM_JUDGE_CORE
    prof = view.first_profile(model)
    timed = view.timed(model, prof)
    if not timed:
        return None
    arm = {(ArtifactId.of(r).stem, r.runtime): (r, view.arm_cost(r, ARM_JUDGE_CORE)) for r in timed}
    on_arm = any(c is not None for _, c in arm.values())
    pts = [(r, c if on_arm else r.metrics["latency_p50_ms"]) for r, c in arm.values()
           if (c is not None or not on_arm) and "size_bytes" in r.metrics]
    placed = {ArtifactId.of(r).stem for r, _ in pts}
    off = [(e, _off_arm_reason(view, model, ArtifactId.of(e).stem)) for e in view.kind("export")
           if e.model == model and e.status == "ok" and "size_bytes" in e.metrics and ArtifactId.of(e).stem not in placed]
    fig = plt.figure(figsize=(7.6, 4.9 if off else 4.3))
    grid = fig.add_gridspec(2 if off else 1, 1, height_ratios=[1, 6] if off else [1], hspace=0.06)
    ax = fig.add_subplot(grid[-1])
    strip = fig.add_subplot(grid[0], sharex=ax) if off else None
    for r, y in pts:
        ax.scatter(r.metrics["size_bytes"] / 1024, y, color=FRAMEWORK_COLORS.get(r.framework, "grey"),
                   marker=RUNTIME_MARKERS.get(r.runtime, "X"), s=46, edgecolor="black", linewidth=0.5, zorder=3,
                   alpha=0.85)
    xy = [(r.metrics["size_bytes"] / 1024, y) for r, y in pts]
    if xy:
        front = pareto_front(xy)
        fx, fy = [xy[i][0] for i in front], [xy[i][1] for i in front]
        ax.step(fx + [max(x for x, _ in xy) * 1.08], fy + [fy[-1]], where="post", color="black", linestyle="--",
                linewidth=1, zorder=2)
    reasons: dict[str, int] = defaultdict(int)
    if strip is not None:
        for e, why in off:
            strip.scatter(e.metrics["size_bytes"] / 1024, 0, facecolor="none", linewidth=1.2, s=40, zorder=3,
                          edgecolor=FRAMEWORK_COLORS.get(e.framework, "grey"),
                          marker=RUNTIME_MARKERS.get(next((b.runtime for b in view.kind("bench") if b.model == model
                                                            and ArtifactId.of(b).stem == ArtifactId.of(e).stem), ""), "X"))
            reasons[why] += 1
        strip.set_yticks([0], ["no ARM64\nfigure" if on_arm else "not timed"], fontsize=7)
        strip.set_ylim(-1, 1)
        strip.tick_params(axis="x", which="both", labelbottom=False)
        strip.grid(True, axis="x", which="both", alpha=0.3)
    chosen: dict[int, list] = {}          # one ring and one label per file, naming every platform that picked it
    for p in picks(view, model):
        if p.record is not None:
            chosen.setdefault(id(p.record), [p.record, []])[1].append(p)
    shown = defaultdict(int)
    for r, ps in chosen.values():
        color = PICK_STYLE.get(ps[0].platform, ("black", ""))[0]
        x = r.metrics["size_bytes"] / 1024
        y = ps[0].cost if (ps[0].on_arm or not on_arm) else None
        if y is None and strip is None:
            continue
        target, y = (ax, y) if y is not None else (strip, 0)
        target.scatter(x, y, s=190, facecolor="none", edgecolor=color, linewidth=2, zorder=4)
        lo, hi = (np.log10(v) for v in sorted(target.get_xlim()))
        left = np.log10(x) > (lo + hi) / 2      # a label right of a point on the right half would leave the axes
        names = " + ".join(PLATFORM_NAME.get(p.platform, p.platform) for p in ps)
        target.annotate(f"{names} pick: {ArtifactId.of(r).stem}", (x, y),
                        xytext=(-9 if left else 9, 7 + 13 * shown[target]), ha="right" if left else "left",
                        textcoords="offset points", fontsize=8, color=color, fontweight="bold", zorder=5,
                        annotation_clip=False,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        shown[target] += 1
    _log_axes(ax, "xy")
    ax.set_xlabel("artifact size (KiB, log scale)")
    ax.set_ylabel(f"ARM64 net instructions / inference\n({ARM_JUDGE_CORE}, log scale)" if on_arm
                  else f"host latency p50 (ms, {prof}, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{model}: size vs cost " + ("on the emulated ARM64 core" if on_arm else "on the host") +
                 " (ringed: the picks)", fontsize=10, y=0.99)
    frameworks = sorted({r.framework for r, _ in pts} | {e.framework for e, _ in off})
    handles = [Patch(color=FRAMEWORK_COLORS.get(f, "grey"), label=FRAMEWORK_LABEL.get(f, f)) for f in frameworks]
    rts = sorted({r.runtime for r, _ in pts} | {b.runtime for b in view.kind("bench") if b.model == model
                                                 and ArtifactId.of(b).stem in {ArtifactId.of(e).stem for e, _ in off}})
    handles += [Line2D([], [], marker=RUNTIME_MARKERS.get(rt, "X"), linestyle="", color="grey", markeredgecolor="black",
                       label=rt) for rt in rts]
    handles.append(Line2D([], [], color="black", linestyle="--", label="Pareto front"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=min(len(handles), 5),
              fontsize=7, frameon=False)
    if on_arm:
        from pipeline.report.picks import short_count
        _log_axes(ax, "y", short_count)
    if reasons:
        fig.text(0.01, 0.005, textwrap.fill("no ARM64 figure: " + "; ".join(
            f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])), 160), fontsize=6.5,
            color="#444", va="bottom")
    fig.subplots_adjust(left=0.13, right=0.98, top=0.92, bottom=0.27 if reasons else 0.22)
    return fig


def _quality_metric(rs: list[Record]) -> tuple[str, str, float]:
    """(metric, axis label, scale): accuracy when the model has labels, else reconstruction MSE (an
    autoencoder's output is not a class: no top-1 agreement), else top-1 agreement."""
    if any("accuracy" in r.metrics for r in rs):
        return "accuracy", "accuracy on the held-out set (%)", 100.0
    if any("reconstruction_mse" in r.metrics for r in rs):
        return "reconstruction_mse", "reconstruction MSE vs the input (lower is better)", 1.0
    if any("top1_agreement" in r.metrics for r in rs):
        return "top1_agreement", "top-1 agreement with the reference model (%)", 100.0
    return "", "", 1.0


def quality_vs_size_figure(view: View, model: str):
    rs = view.timed(model)
    metric, label, scale = _quality_metric(rs)
    rs = [r for r in rs if metric and metric in r.metrics]
    if not rs:
        return None
    colors = _path_colors([ArtifactId.of(r).stem for r in view.timed(model)])
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    for r in rs:
        ax.scatter(r.metrics["size_bytes"] / 1024, r.metrics[metric] * scale, color=colors[ArtifactId.of(r).stem],
                   marker=RUNTIME_MARKERS.get(r.runtime, "x"), s=55, edgecolor="black", linewidth=0.5, zorder=3)
    refs = {}
    for r in rs:
        if metric in ("accuracy", "reconstruction_mse") and f"reference_{metric}" in r.metrics:
            refs[r.source] = r.metrics[f"reference_{metric}"] * scale
    unit = "%" if scale == 100.0 else ""
    by_value = defaultdict(list)  # twins with the same reference value share one line and label
    for src, v in sorted(refs.items()):
        by_value[round(v, 4)].append(src)
    for v, srcs in sorted(by_value.items()):
        color = SOURCE_COLORS.get(srcs[0], "grey")
        ax.axhline(v, color=color, linestyle=":", linewidth=1.2)
        ax.annotate(f"reference {', '.join(srcs)}: " + (f"{v:.2f}%" if unit else f"{v:.4g}"), (0.0, v),
                    xycoords=("axes fraction", "data"),
                    xytext=(4, 3), textcoords="offset points", ha="left", fontsize=8, color=color)
    _log_axes(ax, "x")
    ax.set_xlabel("artifact size (KiB, log scale)")
    ax.set_ylabel(label)
    lo = min(r.metrics[metric] * scale for r in rs)
    if unit:   # a percentage: up to 100, 2 points below the lowest
        ax.set_ylim(max(0.0, min(lo, *refs.values()) - 2.0) if refs else max(0.0, lo - 2.0), 100.5)
    ax.set_title(f"{model}: {metric.replace('_', ' ')} vs size (dotted: each twin's float reference)")
    ax.grid(True, which="both", alpha=0.3)
    handles = [Patch(color=colors[n], label=n) for n in sorted({ArtifactId.of(r).stem for r in rs})]
    handles += [Line2D([], [], marker=m, linestyle="", color="grey", markeredgecolor="black", label=rt)
                for rt, m in RUNTIME_MARKERS.items() if any(r.runtime == rt for r in rs)]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def int8_speedup_figure(view: View, model: str):
    prof = view.first_profile(model)
    pairs = view.int8_pairs(model, prof)
    if not pairs:
        return None
    labels = [f"{q.framework}: {ArtifactId.of(q).stem} vs {f.path} [{q.runtime}]" for f, q in pairs]
    speed = [f.metrics["latency_p50_ms"] / q.metrics["latency_p50_ms"] for f, q in pairs]
    shrink = [f.metrics["size_bytes"] / q.metrics["size_bytes"] for f, q in pairs]
    colors = [FRAMEWORK_COLORS.get(q.framework, "grey") for _, q in pairs]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.42 * len(pairs) + 1.8), sharey=True)
    y = np.arange(len(pairs))
    for ax, vals, title in ((axes[0], speed, f"speed-up (fp32 p50 / int8 p50, x), profile {prof}"),
                            (axes[1], shrink, "shrink (fp32 size / int8 size, x)")):
        ax.barh(y, vals, color=colors, edgecolor="black", linewidth=0.4)
        ax.axvline(1.0, color="black", linewidth=1)
        for yi, v in zip(y, vals):
            ax.annotate(f"{v:.2f}x", (v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ratio (x); > 1 = int8 is faster / smaller")
        ax.set_xlim(0, max(vals) * 1.25)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(handles=[Patch(color=c, label=fw) for fw, c in FRAMEWORK_COLORS.items()],
               loc="upper right", fontsize=8, ncols=2)
    fig.suptitle(f"{model}: int8 vs fp32, same twin, format and runtime", fontsize=11)
    fig.tight_layout()
    return fig


def _box_stats(r: Record) -> dict:
    """Box = p25..p75, whiskers = p1..p99 from the worker's 50 latency quantiles; records from before
    the quantiles were stored fall back to their percentiles (box p50..p90, whiskers min..p99)."""
    q = r.info.get("latency_quantiles_ms")
    m = r.metrics
    if q:
        levels = (np.arange(len(q)) + 0.5) / len(q)
        p = lambda x: float(np.interp(x, levels, q))  # noqa: E731
        return {"med": p(0.5), "q1": p(0.25), "q3": p(0.75), "whislo": float(q[0]), "whishi": float(q[-1]),
                "label": f"{ArtifactId.of(r).stem} [{r.runtime}]"}
    p50 = m["latency_p50_ms"]
    p90 = m.get("latency_p90_ms", p50)
    return {"med": p50, "q1": p50, "q3": p90, "whislo": m.get("latency_min_ms", p50),
            "whishi": m.get("latency_p99_ms", p90),
            "label": f"{ArtifactId.of(r).stem} [{r.runtime}] (percentiles only)"}


def latency_distribution_figure(view: View, model: str):
    profs = view.profiles(model)
    if not profs:
        return None
    keys = sorted({(ArtifactId.of(r).stem, r.runtime) for r in view.timed(model)})
    fig, axes = plt.subplots(1, len(profs), figsize=(6 * len(profs) + 3, 0.32 * len(keys) + 1.8),
                             sharey=True, squeeze=False)
    for ax, prof in zip(axes[0], profs):
        by = {(ArtifactId.of(r).stem, r.runtime): r for r in view.timed(model, prof)}
        stats = [_box_stats(by[k]) if k in by else None for k in keys]
        present = [(i, s) for i, s in enumerate(stats) if s]
        ax.bxp([s for _, s in present], positions=[i for i, _ in present], orientation="horizontal",
               showfliers=False, widths=0.6, patch_artist=True,
               boxprops={"facecolor": "#90caf9"}, medianprops={"color": "black"})
        _log_axes(ax, "x")
        ax.set_xlabel("latency per inference (ms, log scale)")
        ax.set_title(f"profile {prof}", fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(range(len(keys)), [f"{a} [{rt}]" for a, rt in keys], fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle(f"{model}: latency distribution per artifact (box p25-p75, line median, whiskers p1-p99)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def status_grid_figure(rows: list[str], cols: list[str], status: dict[tuple[str, str], str], title: str,
                       row_label: str = "", col_label: str = ""):
    """A colored grid of statuses, generic over (rows, cols, status): the model x path support matrix
    and the operator x path probe matrix both use it. A cell without an entry is "missing"."""
    if not rows or not cols:
        return None
    names = list(CELL_STATUSES)
    grid = np.array([[names.index(status.get((r, c), "missing")) if status.get((r, c), "missing") in names
                      else names.index("failed") for c in cols] for r in rows])
    fig, ax = plt.subplots(figsize=(max(7.5, 1.5 * len(cols) + 5.0), 0.34 * len(rows) + 2.4))
    ax.imshow(grid, cmap=ListedColormap([STATUS_COLOR[n] for n in names]), vmin=-0.5,
              vmax=len(names) - 0.5, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            s = status.get((r, c), "")
            ax.text(j, i, s, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), cols, rotation=30 if len(cols) > 3 else 0, ha="right" if len(cols) > 3
                  else "center", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(np.arange(len(cols) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    used = sorted({n for n in status.values() if n in STATUS_COLOR} | ({"missing"} if
                  len(status) < len(rows) * len(cols) else set()), key=names.index)
    ax.legend(handles=[Patch(facecolor=STATUS_COLOR[n], edgecolor="grey", label=n) for n in used],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def support_cells(view: View) -> tuple[list[str], list[str], dict]:
    """Export path x model: each cell's status (`view.SupportCell.status`)."""
    status = {key: cell.status for key, cell in view.support.items()}
    return sorted({k[0] for k in status}), sorted({k[1] for k in status}), status


def probe_cells(view: View) -> tuple[list[str], list[str], dict]:
    """Operator x path from kind="probe" records (info["probe"] = operator name); several models'
    probes of one operator on one path combine to the worst status (`view.SEVERITY`)."""
    status: dict[tuple[str, str], str] = {}
    for r in view.kind("probe"):
        if not r.info.get("probe"):
            continue
        key = (str(r.info["probe"]), r.path)
        if key not in status or SEVERITY[r.status] > SEVERITY[status[key]]:
            status[key] = r.status
    return sorted({k[0] for k in status}), sorted({k[1] for k in status}), status


def write_all(view: View, out_dir: Path) -> dict[str, Path]:
    """Draw every plot that has data; returns {name: png path}. Names: support_matrix, probe_matrix,
    <model>__tradeoff, <model>__latency_vs_size, <model>__quality_vs_size, <model>__int8_vs_fp32, <model>__latency_dist."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # build, save and close one figure at a time: holding all of them open costs memory for nothing
    makers = {}
    rows, cols, st = support_cells(view)
    makers["support_matrix"] = lambda: status_grid_figure(
        rows, cols, st, "Support matrix: export path x model (partial = exported, some runtime failed; "
        + "; ".join(f"{e.status} = exported, runs on {e.devices} only" for e in ELSEWHERE) + ")",
        "export path", "model")
    prows, pcols, pst = probe_cells(view)
    makers["probe_matrix"] = lambda: status_grid_figure(prows, pcols, pst, "Operator support: operator x export path",
                                                        "operator", "export path")
    models = sorted({r.model for r in view.kind("bench") if r.path != "user"})
    for m in models:
        makers[f"{m}__tradeoff"] = lambda m=m: tradeoff_figure(view, m)
        makers[f"{m}__latency_vs_size"] = lambda m=m: latency_vs_size_figure(view, m)
        makers[f"{m}__quality_vs_size"] = lambda m=m: quality_vs_size_figure(view, m)
        makers[f"{m}__int8_vs_fp32"] = lambda m=m: int8_speedup_figure(view, m)
        makers[f"{m}__latency_dist"] = lambda m=m: latency_distribution_figure(view, m)
    items = list(makers.items())
    drawn = set(_draw_in_two(items, out_dir)) if len(items) > 1 and (os.cpu_count() or 1) > 1 \
        and hasattr(os, "fork") else set(_draw(items, out_dir, 0, 1))
    return {name: out_dir / f"{name}.png" for name, _ in items if name in drawn}


def _draw(items: list, out_dir: Path, k: int, n: int) -> list[str]:
    """Draw and save every n-th figure from the k-th: the names of those that had data."""
    from pipeline import fsutil
    done = []
    for name, make in items[k::n]:
        fig = make()
        if fig is None:
            continue
        fsutil.write_with(out_dir / f"{name}.png", lambda p, f=fig: f.savefig(p, dpi=DPI, format="png"))
        plt.close(fig)
        done.append(name)
    return done


def _draw_in_two(items: list, out_dir: Path) -> list[str]:
    """Half the figures in a forked child, half here: drawing is most of a report's ~18 s on one core,
    and the bench's cores are free by then. A child that fails leaves its half to this process."""
    import json
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: draw, say which, and leave without the parent's exit handlers or buffers
        code = 1
        try:
            os.close(r)
            os.write(w, json.dumps(_draw(items, out_dir, 1, 2)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        mine = _draw(items, out_dir, 0, 2)
    finally:
        with os.fdopen(r, "rb") as f:
            said = f.read()
        _, status = os.waitpid(pid, 0)
    if status == 0:
        return mine + json.loads(said)
    return mine + _draw(items, out_dir, 1, 2)
