"""The pipeline's stages as plain functions: train, export, bench, report. The CLI calls these.

Each stage merges its records into `results/results.jsonl` (atomically, under the results lock).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import models
from pipeline import fsutil, progress, runlog, workers
from pipeline.artifact import export_records
from pipeline.schema import Record, keep_last_good, merge, read_records


def results_file(results: Path) -> Path:
    return results / "results.jsonl"


def save_records(results: Path, new: list[Record], drop=None) -> list[Record]:
    """Merge `new` into the results file; `drop(record)` removes older records first (a stage that
    rewrites a model's whole record set must not leave a stale plan or failure behind). A failed
    re-measurement keeps the last good record (`schema.keep_last_good`): those are returned."""
    path = results_file(results)
    old = [r for r in read_records(path) if drop is None or not drop(r)]
    new, kept = keep_last_good(old, as_stored(old, new))
    fsutil.write_atomic(path, "".join(r.to_json() + "\n" for r in merge(old, new)))
    return kept


def as_stored(old: list[Record], new: list[Record]) -> list[Record]:
    """`new`, where a record made again with the same content as a stored one (a skip, a cached
    result) is the stored one, first creation time included: a run that changed nothing leaves the
    results file, and so the report, as they were."""
    same = {r.key(): r for r in old}
    return [same[r.key()] if r.key() in same and _content(r) == _content(same[r.key()]) else r for r in new]


def _content(r: Record) -> str:
    """What a record says, as stored (JSON: tuples are lists), apart from when it was made."""
    return dataclasses.replace(r, created=0.0).to_json()


def _say_kept(kept: list[Record], log) -> None:
    for r in kept:
        log(f"[bench] kept the last good measurement of {r.artifact or r.model} on {r.runtime}/{r.profile}: "
            f"this run failed ({r.info['failed_attempt']['error']})")


def collect_export_records(artifacts: Path, names: list[str]) -> list[Record]:
    """Train + export records of these models (the one reader: `pipeline.artifact.export_records`)."""
    from export.registry import all_paths
    paths = all_paths()

    def sources_of(path: str):
        return paths[path].sources if path in paths else None
    return [r for name in names for r in export_records(artifacts, name, sources_of)]


EXPORT_TIMEOUT_S = 1800.0   # a worker that prints no progress line (a training epoch, a path) for this long hangs
STOP_GRACE_S = 10.0         # an interrupted stage: each worker's time to remove its temp folders


def export(names: list[str], artifacts: Path, paths: list[str], force: bool, jobs: int, log=print,
           etrecord: bool = False) -> list[Record]:
    """`jobs` long-lived worker processes (`workers.run_queue` over `export/run.py`) take the work in turn
    (`_ExportJobs`: each model's training, then its paths): the toolchains' imports are paid once per
    worker, not once per model. A converter that crashes natively takes down only its worker: the paths
    its model had not finished are recorded as failed, and a fresh worker goes on with the jobs still to do."""
    slots = max(1, min(jobs, len(names)))
    threads = str(max(1, (os.cpu_count() or 1) // slots))
    # one step per model x path x source twin: the count and time left of the whole stage
    steps = progress.Progress(sum(_steps_per_model(n, paths) for n in names), count=len(names) > 1)
    queue = _ExportJobs(names)
    unfinished: list[tuple[str, str, str]] = []   # (model, why for its records, what the terminal says)

    def take():
        job = queue.take()
        if job is None or job == workers.WAIT:
            return job
        name, step = job
        if step == "export":
            steps.restart_clock()   # once: the first path's clock starts with the exports
        return {"id": f"{name} {step}", "model": name, "step": step}

    def finished(i: str, result: dict) -> None:
        name, step = i.split(" ")
        if result["status"] != "ok" and "death" in result:
            unfinished.append((name, f"export worker died ({result['why']})", f"export worker died: {result['error']}"))
        elif result["status"] != "ok":
            why = (f"the model's {'training' if step == 'train' else 'export'} raised {result['error']} "
                   "(traceback in the log)")
            unfinished.append((name, why, why))
        queue.finished((name, step), ok=result["status"] == "ok")

    def say(line: str) -> None:
        log(steps.tag(line) if line.startswith("[export ") else line)

    job = workers.Job("export.run", params={"artifacts": str(artifacts), "paths": paths, "force": force,
                                            "etrecord": etrecord},
                      env={"MOBILEBENCH_THREADS": threads, "OMP_NUM_THREADS": threads},
                      timeout_s=EXPORT_TIMEOUT_S, stop_grace_s=STOP_GRACE_S)
    t0 = time.perf_counter()
    workers.run_queue(job, take, slots, on_result=finished, on_line=say)
    records = collect_export_records(artifacts, names)
    for name, why, said in unfinished:
        log(f"[export] {name}: {said}")
        records += _missing_as_failed(name, artifacts, paths, records, why)
    log(f"[export] {len(names)} model(s) in {time.perf_counter() - t0:.1f}s")
    return records


class _ExportJobs:
    """The export stage's work, in jobs the slots take in turn: each model's training, then its export
    paths (queued once its training is done; the export job reloads the trained twins from disk). Every
    training goes first, costliest model first, so the exports, the larger half, are all queued early and
    pack the slots evenly: with a model as one job (train + export) the costliest model ran alone to
    the end while the other slot idled (2 workers, toy zoo: 392 s vs the 370 s of an even split)."""

    def __init__(self, names: list[str]):
        order = sorted(names, key=lambda n: -models.get(n).build_cost_s)
        self._rank = {n: i for i, n in enumerate(order)}
        self._ready = [(n, "train") for n in order]
        self._running = 0

    def take(self) -> tuple[str, str] | str | None:
        """The next job (a training before any export; then the costliest model); `workers.WAIT` while
        none is ready but a running training may still queue one; None when nothing is left."""
        if not self._ready:
            return workers.WAIT if self._running else None
        job = min(self._ready, key=lambda j: (j[1] != "train", self._rank[j[0]]))
        self._ready.remove(job)
        self._running += 1
        return job

    def finished(self, job: tuple[str, str], ok: bool) -> None:
        """A training that ended well queues its model's export; one that did not leaves the model's
        paths to be recorded as failed (`_missing_as_failed`)."""
        self._running -= 1
        if ok and job[1] == "train":
            self._ready.append((job[0], "export"))


def _steps_per_model(name: str, paths: list[str]) -> int:
    from export import registry
    return sum(len(p.sources) for p in registry.paths_for(models.get(name).task).values()
               if not paths or p.name in paths)


def _missing_as_failed(name, artifacts, paths, records, why: str) -> list[Record]:
    from export import registry
    have = {(r.source, r.path) for r in records if r.model == name and r.kind == "export"}
    out = []
    for p in registry.paths_for(models.get(name).task).values():
        if paths and p.name not in paths:
            continue
        for src in p.sources:
            if (src, p.name) not in have:
                out.append(Record(kind="export", model=name, source=src, path=p.name, format=p.format,
                                  framework=p.artifact(name, src).framework, quantization=p.quantization,
                                  status="failed", error=f"{why} before this path finished"))
    return out


def bench(args, log=print) -> int:
    """Benchmark our artifacts (from the export records) or the user's own files."""
    from pipeline.bench import harness as bench_mod
    from pipeline.bench import profiles
    from pipeline.report.markdown import summary_table
    overrides = {k: getattr(args, k, None) for k in ("min_runs", "min_seconds", "ci_pct", "timeout_s", "repeats",
                                                  "peer", "op_profile")}
    if args.profiles is not None:
        overrides["profiles"] = profiles.parse_list(args.profiles)
    cfg = bench_mod.config_with(**overrides)
    cache = args.results / "cache" / "bench"
    if args.files:
        from pipeline.package import samples
        for name, f in args.input_files:   # a pickled or oversized --input: one line, exit 2, nothing measured
            samples.check_npy(Path(f), f"--input {name}")
        targets, started = [], time.time()
        for f in args.files:    # a bad file: one line naming it, exit 2, before anything is measured
            targets.append(bench_mod.byom_target(f, tuple(args.shape), tuple(args.input_files)))
        records = bench_mod.run(targets, cfg, cache, log=log)
        records += _device_column(args, targets, log)
        kept = save_records(args.results, records + [_run_record(read_records(results_file(args.results)), cfg,
                                                                 records, started)])
        log(summary_table(records))
        _say_kept(kept, log)
        return 1 if any(r.status == "failed" for r in records) else 0
    import models as _models
    names = _models.select(args.models)  # unknown names: one line listing the valid ones (exit 2)
    exports = collect_export_records(args.artifacts, names)
    if not any(r.kind == "export" for r in exports):
        log(f"no exported artifacts under {runlog.shown(args.artifacts)}: run `make export` first")
        return 1
    t0, started = time.perf_counter(), time.time()
    targets = bench_mod.targets_from_exports(exports, args.artifacts)
    records = bench_mod.run(targets, cfg, cache, log=log)
    walls = {"bench": time.perf_counter() - t0}
    records += _device_column(args, targets, log)
    walls["device column"] = time.perf_counter() - t0 - walls["bench"]
    records += _generation(args, exports, cfg, log)
    walls["generation"] = time.perf_counter() - t0 - walls["bench"] - walls["device column"]
    stored = read_records(results_file(args.results))
    records = as_stored(stored, records)   # a skip made again is the stored one: not a measurement of this run
    kept = save_records(args.results, exports + records + [_run_record(stored, cfg, records, started)])
    log(f"[bench] {len(records)} measurements in {time.perf_counter() - t0:.1f}s")
    t1 = time.perf_counter()
    report(args.results, log=log)
    walls["report"] = time.perf_counter() - t1
    _say_kept(kept, log)
    if getattr(args, "profile", False):
        log(_profile(records, started, walls))
    answer(args.results, log=log)      # the last lines: the picks, the counts, the causes, the report's path
    return 0


def _run_record(stored: list[Record], cfg, records, started: float):
    """This run's provenance record; when it measured nothing (every record from the cache), with the
    CPU peak figures of the last run that did, instead of measuring them again (`stored`: the results
    file's records before this run)."""
    from pipeline import provenance
    prev = provenance.latest(stored)
    fresh = any(r.created >= started for r in records)
    rec = provenance.run_record(cfg.profiles, cfg, None if fresh or prev is None else prev.metrics)
    if not fresh and prev is not None and _content(dataclasses.replace(rec, metrics=prev.metrics)) == _content(prev):
        return prev   # nothing measured, nothing changed: the run that measured stays the one named
    return rec


def _profile(records, started: float, walls: dict[str, float]) -> str:
    """`bench --profile`: where this run's seconds went, from the phase times of the records it made
    (cached ones cost this run nothing), beside the stage's wall clock."""
    from pipeline.report import timeprofile
    fresh = [r for r in records if r.created >= started]
    lines = [f"[bench] where this run's time went ({len(fresh)} of {len(records)} records made now):", ""]
    lines += timeprofile.phase_table(fresh, {"bench": walls["bench"]}) or ["(nothing measured: all cached)", ""]
    lines += ["Other steps (wall clock): " + ", ".join(f"{k} {v:.1f} s" for k, v in walls.items() if k != "bench")]
    return "\n".join(lines)


def _device_column(args, targets, log) -> list[Record]:
    """The emulated ARM64 column (pipeline/bench/device.py), unless --no-device."""
    if not getattr(args, "device", True):
        return []
    from pipeline.bench import device
    t0 = time.perf_counter()
    cache = args.results / "cache" / "device"
    recs = device.run(device.items_from_targets(targets, cache), cache, log=log, sandboxed=bool(args.files))
    log(f"[device] {len(recs)} records in {time.perf_counter() - t0:.1f}s")
    return recs


def _generation(args, exports: list[Record], cfg, log) -> list[Record]:
    """The generative artifacts (export records with info["generation"]): pipeline/generative/bench.py,
    with the emulated ARM64 cores unless --no-device."""
    from pipeline.generative import bench as gen_bench
    targets, skipped = gen_bench.targets(exports, args.artifacts)
    if not targets:
        return skipped
    t0 = time.perf_counter()
    recs = gen_bench.run(targets, cfg, args.results / "cache" / "generate", device=getattr(args, "device", True), log=log)
    log(f"[generate] {len(recs)} records in {time.perf_counter() - t0:.1f}s")
    return skipped + recs


def all_records(results: Path) -> list[Record]:
    """The results file and, merged in, the device tests' own file (they run in their own pytest
    session): what the report and the graph view read."""
    return merge(read_records(results_file(results)), read_records(results / "device" / "records.jsonl"))


# code a report's content depends on (its sections, the view, the registry's tasks and tolerances):
# a change here renders it again; otherwise the same records give the same report
REPORT_CODE_DIRS = ("pipeline", "models", "export", "probes")
REPORT_STAMP = "report.key.json"


def report_key(records: list[Record]) -> str:
    from importlib.metadata import version
    code = [p for d in REPORT_CODE_DIRS for p in (fsutil.ROOT / d).rglob("*.py")]
    return fsutil.sha256_text(fsutil.source_hash(code), version("matplotlib"),
                              *sorted(r.to_json() for r in records))


def answer(results: Path, log=print, full_table: bool = False) -> None:
    """The run's answer at a glance (`pipeline/report/glance.py`); `full_table`: every bench record of the
    results as one table before it (`python -m pipeline report --table`)."""
    from pipeline.report import glance
    from pipeline.report.markdown import summary_table
    from pipeline.report.view import build
    records = all_records(results)
    if full_table:
        log(summary_table(records))
    log("\n".join(glance.end_lines(build(records), results / "report.md", table_hint=not full_table)))


def report(results: Path, log=print) -> int:
    """report.md/.html, plots and graph-view overlays from the records; reused when neither the records
    nor the code changed since the last one (a warm `bench-mobile` spends ~15 s of 23 drawing plots)."""
    from pipeline.explore import nodedata
    from pipeline.report import markdown as report_mod
    records = all_records(results)
    if not records:
        log(f"no records in {results_file(results)}: run `make bench-mobile` first")
        return 1
    key, stamp = report_key(records), results / REPORT_STAMP
    try:
        saved = json.loads(stamp.read_text())
        if saved["key"] == key and all((results / f).exists() for f in saved["files"]):
            log(f"[report] up to date: {runlog.shown(results / 'report.md')} and "
                f"{runlog.shown(results / 'report.html')} "
                "(records and code unchanged)")
            return 0
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stamp.unlink(missing_ok=True)     # outputs being rewritten are not up to date until all are
    written = report_mod.write(records, results / "report.md")
    log(f"[report] wrote {runlog.shown(written[0])}, {runlog.shown(written[1])} and {len(written) - 2} plot(s) in "
        f"{runlog.shown(results / 'plots')}")
    built = nodedata.write(records, results)
    log(f"[report] wrote {len(built.overlays)} Model Explorer overlay(s) in {runlog.shown(results / nodedata.FOLDER)} "
        f"(`make explore MODEL=... ARTIFACT=...`)")
    files = [str(Path(f).relative_to(results)) for f in [*written, *(o.file(results) for o in built.overlays)]]
    fsutil.write_json_atomic(stamp, {"key": key, "files": files})
    return 0
