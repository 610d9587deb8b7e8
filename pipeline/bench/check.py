"""Regression gate: compare a fresh run with a committed baseline; exit 1 naming each offender.

    python -m pipeline check --baseline baselines/digits_cnn.jsonl           # make bench-check
    python -m pipeline check --baseline baselines/digits_cnn.jsonl --latency warn
    python -m pipeline check --write-baseline baselines/digits_cnn.jsonl --models digits_cnn

Rules and thresholds: the policy's `REGRESSION_GATE` (pipeline/policy.py), overridden by
`bench_check.toml` (repo root): an export path or runtime measurement
that was ok and now fails or is gone; an artifact that grew; accuracy / agreement that dropped;
latency that regressed beyond a noise-aware threshold. A baseline is a small records file (the
results schema, only the fields the gate reads), written from a real run with --write-baseline.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil, provenance
from pipeline.artifact import ArtifactId
from pipeline.parity import REGRESSION_GATE
from pipeline.schema import Record, read_records

CONFIG = fsutil.ROOT / "bench_check.toml"
GATE_METRICS = ("size_bytes", "accuracy", "top1_agreement", "reconstruction_mse", "latency_p50_ms",
                "latency_p90_ms", "latency_min_ms")


@dataclass(frozen=True)
class Finding:
    level: str          # "fail" | "warn"
    rule: str           # dropped | size | accuracy | agreement | mse | latency
    what: str           # model/source__path [runtime profile]
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper():4} {self.rule:9} {self.what}: {self.message}"


def load_config(path: Path = CONFIG) -> dict:
    cfg = {k: dict(v) for k, v in REGRESSION_GATE.items()}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
        for section, values in data.items():
            if section not in cfg:
                raise ValueError(f"{path}: unknown section [{section}]; valid: {', '.join(cfg)}")
            unknown = set(values) - set(cfg[section])
            if unknown:
                raise ValueError(f"{path}: unknown key(s) {sorted(unknown)} in [{section}]")
            cfg[section].update(values)
    for key in ("mode", "different_machine"):
        if cfg["latency"][key] not in ("fail", "warn", "off"):
            raise ValueError(f"{path}: [latency] {key} must be fail, warn or off, got {cfg['latency'][key]!r}")
    return cfg


def _key(r: Record) -> tuple:
    return (r.kind, r.model, r.source, r.path, r.runtime, r.profile)


def _name(r: Record) -> str:
    name = ArtifactId.of(r).label
    return name + (f" [{r.runtime} {r.profile}]" if r.kind == "bench" else " [export]")


def slim(r: Record) -> dict:
    """The fields the gate reads: identity, status, error, gate metrics, and the machine of the run."""
    d = {"kind": r.kind, "model": r.model, "status": r.status, "source": r.source, "path": r.path,
         "format": r.format, "framework": r.framework, "quantization": r.quantization, "runtime": r.runtime,
         "profile": r.profile, "threads": r.threads, "created": round(r.created, 1)}
    if r.error:
        d["error"] = r.error
    metrics = {k: round(v, 6) for k, v in r.metrics.items() if k in GATE_METRICS}
    if metrics:
        d["metrics"] = metrics
    if r.kind == "pipeline":
        d["info"] = {k: r.info.get(k, {}) for k in ("machine", "versions", "profiles")}
    return {k: v for k, v in d.items() if v not in ("", 0, {}) or k in ("kind", "model", "status")}


def write_baseline(results: list[Record], dest: Path, models: list[str]) -> int:
    keep = [r for r in results if (r.kind in ("export", "bench") and (not models or r.model in models))]
    run = provenance.latest(results)
    if run is not None:
        keep.append(run)
    if not any(r.kind == "bench" for r in keep):
        raise ValueError(f"no bench records for {models or 'any model'} to make a baseline from: "
                         "run `make bench-mobile` first")
    fsutil.write_atomic(dest, "".join(json.dumps(slim(r), sort_keys=True) + "\n" for r in keep))
    return len(keep)


def _latency_level(cfg: dict, base: list[Record], fresh: list[Record]) -> tuple[str, str]:
    mode = cfg["latency"]["mode"]
    b, f = provenance.latest(base), provenance.latest(fresh)
    if mode != "off" and b is not None and f is not None and provenance.stamp(b.info) != provenance.stamp(f.info):
        level = cfg["latency"]["different_machine"]
        order = {"off": 0, "warn": 1, "fail": 2}
        mode = min(mode, level, key=order.__getitem__)
        return mode, (f"baseline machine {provenance.stamp(b.info)} != this machine {provenance.stamp(f.info)}: "
                      f"latency findings are '{mode}'")
    return mode, ""


def compare(base: list[Record], fresh: list[Record], cfg: dict) -> tuple[list[Finding], list[str]]:
    """(findings, notes). Only models present in the baseline are compared."""
    models = sorted({r.model for r in base if r.kind in ("export", "bench")})
    fresh_by = {_key(r): r for r in fresh if r.model in models}
    findings: list[Finding] = []
    notes: list[str] = []
    for m in models:
        if not any(r.model == m and r.kind in ("export", "bench") for r in fresh):
            findings.append(Finding("fail", "dropped", m, "no records for this model in the fresh run "
                                    f"(run `make bench-mobile MODELS={m}` first)"))
    lat_mode, lat_note = _latency_level(cfg, base, fresh)
    if lat_note:
        notes.append(lat_note)
    broken_artifacts = set()
    S, Q, L = cfg["size"], cfg["quality"], cfg["latency"]
    for b in sorted((r for r in base if r.kind in ("export", "bench") and r.status == "ok"),
                    key=lambda r: (r.kind != "export", _key(r))):
        if not any(r.model == b.model for r in fresh):
            continue
        art = (b.model, b.source, b.path)
        f = fresh_by.get(_key(b))
        if f is None or f.status != "ok":
            if b.kind == "bench" and art in broken_artifacts:
                continue  # the export already failed: its measurements are gone for that reason
            if cfg["export"]["fail_on_dropped"]:
                msg = "was ok, now missing from the results (path dropped?)" if f is None else \
                    f"was ok, now {f.status}: {f.error}"
                findings.append(Finding("fail", "dropped", _name(b), msg))
            if b.kind == "export":
                broken_artifacts.add(art)
            continue
        bm, fm = b.metrics, f.metrics
        if b.kind == "export" and "size_bytes" in bm and "size_bytes" in fm and bm["size_bytes"] > 0:
            growth = (fm["size_bytes"] / bm["size_bytes"] - 1) * 100
            if growth > S["max_growth_pct"]:
                findings.append(Finding("fail", "size", _name(b), f"artifact grew {bm['size_bytes'] / 1024:.1f} KiB"
                                        f" -> {fm['size_bytes'] / 1024:.1f} KiB (+{growth:.1f}% > "
                                        f"{S['max_growth_pct']:g}%)"))
        if b.kind != "bench":
            continue
        for metric, rule, limit in (("accuracy", "accuracy", Q["max_accuracy_drop_points"]),
                                    ("top1_agreement", "agreement", Q["max_agreement_drop_points"])):
            if metric in bm and metric in fm:
                drop = (bm[metric] - fm[metric]) * 100
                if drop > limit:
                    findings.append(Finding("fail", rule, _name(b), f"{metric} {bm[metric] * 100:.2f}% -> "
                                            f"{fm[metric] * 100:.2f}% (-{drop:.2f} points > {limit:g})"))
            elif metric in bm:
                findings.append(Finding("fail", rule, _name(b), f"{metric} was measured in the baseline, "
                                        "not in the fresh run"))
        if "reconstruction_mse" in bm and "reconstruction_mse" in fm and bm["reconstruction_mse"] > 0:
            growth = (fm["reconstruction_mse"] / bm["reconstruction_mse"] - 1) * 100
            if growth > Q["max_mse_growth_pct"]:
                findings.append(Finding("fail", "mse", _name(b), f"reconstruction MSE {bm['reconstruction_mse']:.4g}"
                                        f" -> {fm['reconstruction_mse']:.4g} (+{growth:.1f}% > "
                                        f"{Q['max_mse_growth_pct']:g}%)"))
        if lat_mode != "off" and b.profile in L["profiles"] and "latency_p50_ms" in bm and "latency_p50_ms" in fm:
            b50, f50 = bm["latency_p50_ms"], fm["latency_p50_ms"]
            b90 = bm.get("latency_p90_ms", b50)
            limit = b50 * (1 + L["max_slowdown_pct"] / 100)
            # contention on a shared machine only adds time: the fastest run (the floor) stays put
            # unless the artifact or runtime really got slower, so the floor must have moved too
            # (a baseline without the floor falls back to the p50 rules alone)
            bmin, fmin = bm.get("latency_min_ms"), fm.get("latency_min_ms")
            floor_moved = bmin is None or fmin is None or fmin > bmin * (1 + L["max_floor_slowdown_pct"] / 100)
            if f50 > limit and f50 - b50 > L["min_abs_ms"] and f50 > b90 and floor_moved:
                findings.append(Finding(lat_mode, "latency", _name(b), f"p50 {b50:.3f} -> {f50:.3f} ms "
                                        f"(+{(f50 / b50 - 1) * 100:.0f}% > {L['max_slowdown_pct']:g}%, "
                                        f"+{f50 - b50:.3f} ms > {L['min_abs_ms']:g} ms, above the baseline "
                                        f"p90 {b90:.3f} ms" + (f"; fastest run {bmin:.3f} -> {fmin:.3f} ms)"
                                                               if bmin and fmin else ")")))
    new = sorted({_name(r) for r in fresh if r.model in models and r.kind in ("export", "bench")
                  and _key(r) not in {_key(b) for b in base}})
    if new:
        notes.append(f"{len(new)} record(s) not in the baseline (new paths or profiles; not gated), "
                     f"e.g. {new[0]}")
    return findings, notes


def run(baseline: Path, results: Path, config: Path = CONFIG, latency: str = "", log=print) -> int:
    cfg = load_config(config)
    if latency:
        cfg["latency"]["mode"] = latency
    if not baseline.exists():
        raise ValueError(f"{baseline}: baseline file not found (write one with --write-baseline)")
    base = read_records(baseline)
    if not base:
        raise ValueError(f"{baseline}: baseline has no records")
    fresh = read_records(results)
    findings, notes = compare(base, fresh, cfg)
    for n in notes:
        log(f"note: {n}")
    for f in findings:
        log(str(f))
    fails = [f for f in findings if f.level == "fail"]
    gated = sum(1 for r in base if r.kind in ("export", "bench") and r.status == "ok")
    log(f"bench-check: {'FAILED' if fails else 'ok'}: {len(fails)} regression(s), "
        f"{len(findings) - len(fails)} warning(s); {gated} baseline records compared "
        f"({baseline} vs {results}; thresholds {config.name if config.exists() else 'built-in defaults'})")
    return 1 if fails else 0
