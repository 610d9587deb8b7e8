"""Benchmark artifacts with the real mobile runtimes, each measurement in an isolated worker.

    python -m pipeline bench                      # every exported artifact of every model
    python -m pipeline bench my_model.tflite      # bring your own model (no labels needed)

Each (artifact x runtime x device profile) is one measurement, made in a worker process
(`pipeline/bench/worker.py`, through `pipeline/workers.py`). Our own artifacts share one worker per runtime
and memory ceiling (`_worker_key`: the runtime's import is paid once); a user's file gets one of its own.
A crash, hang or out-of-memory becomes a `failed` record, with its signal or exit code, for the one
measurement it happened in; a fresh worker goes on with the rest. Each result is cached by content hash
(artifact, eval data, settings, worker code) as soon as it is in.

Rigor (see the report's "Full benchmark metrics" section): each measurement times `repeats` steady runs
of the bound inference call, each stopped by `pipeline/bench/stopping.py` (spread of their medians =
stability), the same runtime on a one-op model (fixed cost per call), and on the first profile a
per-operator profile (`pipeline/bench/opprofile.py`). Each record's `time_<phase>_s` metrics say where
its seconds went (`pipeline/report/timeprofile.py`).
Our models get FLOPs/params (`pipeline/bench/cost.py`); .tflite on LiteRT is checked against LiteRT's own
`litert-benchmark` (`pipeline/bench/peer.py`).
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline import fsutil, parity, progress, runtimes, sandbox, workers
from pipeline.artifact import ArtifactId, resolve
from pipeline.bench import anatomy, profiles
from pipeline.bench.stats import agreement
from pipeline.schema import Record, first_line, read_record_file

HERE = Path(__file__).parent
DATA = sorted(f for f in (HERE / "data").rglob("*") if f.is_file())   # the one-op models the worker times beside each artifact


# export facts a bench record of an artifact that runs elsewhere (Apple only) carries (coreml_paths.py writes them)
APPLE_FACTS = ("needs_apple", "coreml", "pte_delegates", "cpu_operators", "delegated_ops", "non_delegated_ops")


@dataclass(frozen=True)
class Target:
    """One artifact to measure, with what is known about it (from its export record, if ours)."""
    artifact: Path
    format: str
    runtimes: tuple[str, ...]
    export: Record | None = None         # None for bring-your-own-model files
    eval_npz: Path | None = None         # eval inputs and references (our artifacts only)
    layout: str = "same"                 # "nhwc" when the artifact takes the Keras layout
    shapes: tuple = ()                   # input shape overrides (BYOM)
    task: str = ""
    prechecked: bool = False             # structure already checked (BYOM: check_isolated)
    input_files: tuple = ()              # (input name, .npy path): values given with --input (BYOM)


@dataclass
class Outcome:
    record: Record
    cached: bool = False


def code_key(runtime: str) -> str:
    """The code a measurement depends on: the worker, this harness (quality and cost are computed
    here), the runtime's adapter and every project module they import (`deps.key`), the versions of the
    libraries they import as installed for the adapter's interpreter (another venv for an old runtime),
    and the one-op models."""
    from pipeline import deps
    return fsutil.sha256_text(deps.key([HERE / "worker.py", Path(__file__), runtimes.module_file(runtime)],
                                       python=runtimes.get(runtime).python()), fsutil.source_hash(DATA))


def _job_key(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, eval_sha: str,
             want_outputs: bool) -> str:
    sidecar = t.artifact.with_suffix(".etrecord")   # names the operators in the profile (opprofile.py)
    return fsutil.sha256_text(fsutil.sha256_file(t.artifact), runtime, repr(prof), repr(cfg),
                              fsutil.sha256_file(sidecar) if sidecar.exists() else "",
                              eval_sha, t.layout, repr(t.shapes), str(want_outputs),
                              *[f"{n}={fsutil.sha256_file(Path(f))}" for n, f in t.input_files],
                              code_key(runtime))


def worker_job(jobs: list[dict], python: str, timeout_s: float, after_death: str = "fail_rest") -> workers.Job:
    """The bench's worker job: one item per measurement (its "id", else its position), measured in turn
    by one process. A death fails the measurement it was in and, per `after_death`, every one after it
    ("fail_rest": a user's file) or none ("resume": a fresh worker goes on; each finished one is kept)."""
    return workers.Job("pipeline.bench.worker", items=tuple({"id": i, **j} for i, j in enumerate(jobs)),
                       python=python, timeout_s=timeout_s, after_death=after_death)


def _identity(t: Target) -> dict:
    e = t.export
    if e is not None:
        return dict(model=e.model, source=e.source, path=e.path, format=e.format, framework=e.framework,
                    quantization=e.quantization, artifact=e.artifact, artifact_sha256=e.artifact_sha256)
    return dict(model=str(t.artifact), path="user", format=t.format, artifact=str(t.artifact),
                artifact_sha256=fsutil.sha256_file(t.artifact))


def _quality(t: Target, outputs: np.ndarray, limit: int = 0) -> tuple[dict[str, float], dict]:
    """Metrics on the eval set, and where the outputs differ from the reference (`pipeline/explain`:
    bound-free, since the verdict is made later, by `_apply_parity`)."""
    from pipeline.explain import evidence
    with np.load(t.eval_npz) as z:
        ref = z[f"ref_{t.export.source}"][:len(outputs)]
        y = z["y"][:len(outputs)]
        x = z["x"][:len(outputs)]
        in_set = len(z["y"])
    m = agreement(outputs, ref)
    # the inputs as the artifact saw them (a Keras artifact takes NHWC): element-wise maps need its layout
    seen = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if t.layout == "nhwc" and x.ndim == 4 else x
    ev = evidence.of_outputs(ref, outputs, [seen])
    if t.task == "classification":
        m["accuracy"] = float((outputs.argmax(-1) == y).mean())
        m["reference_accuracy"] = float((ref.argmax(-1) == y).mean())
    elif t.task == "reconstruction":
        m["reconstruction_mse"] = float(((outputs - x.reshape(len(x), -1)) ** 2).mean())
        m["reference_reconstruction_mse"] = float(((ref.reshape(len(ref), -1) - x.reshape(len(x), -1)) ** 2).mean())
    m["eval_samples"] = float(len(outputs))
    # the eval pass may stop early on a slow artifact (BenchConfig.eval_max_seconds): every figure above is
    # on the same first samples for the artifact and the reference; this says how many the set had
    m["eval_set_samples"] = float(min(in_set, limit) if limit else in_set)
    return m, ev


def _job(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, want_outputs: bool,
         outputs: Path, prechecked: bool = False) -> dict:
    """One worker sub-job: one artifact, one runtime, one profile."""
    return {"root": str(fsutil.ROOT), "artifact": str(t.artifact), "runtime": runtime, "prechecked": prechecked,
            "threads": prof.threads, "cpus": list(prof.cpus), "mem_limit_mb": prof.mem_limit_mb,
            "warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_seconds": cfg.min_seconds,
            "max_runs": cfg.max_runs, "max_seconds": cfg.max_seconds, "ci_pct": cfg.ci_pct,
            "eval": str(t.eval_npz) if t.eval_npz else "", "layout": t.layout,
            "eval_limit": cfg.eval_limit, "eval_max_seconds": cfg.eval_max_seconds,
            "eval_min_samples": cfg.eval_min_samples,
            "outputs": str(outputs) if want_outputs and t.eval_npz else "",
            "shapes": [list(s) for s in t.shapes], "input_files": dict(t.input_files),
            "repeats": cfg.repeats if prof.name == cfg.profiles[0] and runtime not in
            cfg.one_profile_runtimes else cfg.other_repeats,
            "op_profile": cfg.op_profile and want_outputs and runtime not in cfg.one_profile_runtimes,
            # LiteRT's own benchmark on the first profile: in the worker, after its own timing
            "peer": cfg.peer and prof.name == cfg.profiles[0] and runtime == "litert" and t.format == "tflite"
            and not t.shapes, "peer_timeout_s": cfg.timeout_s / 2}


@dataclass(frozen=True)
class Measurement:
    """One artifact x runtime x profile; `want_outputs` on the profile that runs the eval set."""
    target: Target
    runtime: str
    profile: profiles.Profile
    want_outputs: bool


def measure_one(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, cache_dir: Path,
                want_outputs: bool) -> Outcome:
    """One artifact, one runtime, one profile."""
    return measure([Measurement(t, runtime, prof, want_outputs)], cfg, cache_dir)[0]


def measure_profiles(t: Target, runtime: str, profs: list[tuple[profiles.Profile, bool]],
                     cfg: profiles.BenchConfig, cache_dir: Path) -> list[Outcome]:
    """One artifact with one runtime under several profiles: one Outcome per (profile, want_outputs)."""
    return measure([Measurement(t, runtime, p, w) for p, w in profs], cfg, cache_dir)


def _worker_key(m: Measurement) -> tuple:
    """Which measurements share a worker process. Our own artifacts (made by our toolchain, checked at
    export) share one per runtime and memory ceiling, so a runtime's import (~5 s for the torch-based
    ones) is paid once, not per artifact; a ceiling is the process's RLIMIT_AS, which it cannot lift
    again, so another ceiling gets another process. A user's file gets a process of its own."""
    return m.runtime, m.profile.mem_limit_mb, "" if m.target.export is not None else str(m.target.artifact)


def measure(ms: list[Measurement], cfg: profiles.BenchConfig, cache_dir: Path,
            on_outcome: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """One Outcome per measurement, from the content-hash cache or measured, each handed to
    `on_outcome(index, outcome)` as soon as it is known (and cached at once: an interrupted run keeps
    it). A crash, hang or out-of-memory fails the one measurement it happened in: a fresh worker goes
    on with the rest (a user's file: the rest of its profiles fail with it, as they would again)."""
    out: list[Outcome | None] = [None] * len(ms)

    def done(i: int, o: Outcome) -> None:
        out[i] = o
        if on_outcome is not None:
            on_outcome(i, o)

    todo: dict[tuple, list[tuple[int, Path]]] = {}
    eval_sha: dict[Path | None, str] = {None: ""}    # one hash per eval set, not per measurement
    for i, m in enumerate(ms):
        adapter = runtimes.get(m.runtime)
        if not adapter.available():
            done(i, Outcome(Record(status="skipped", error=f"runtime {m.runtime} is not installed: "
                                   f"{adapter.INSTALL_HINT}", **_base(m))))
            continue
        why = adapter.cannot_run_here()
        if why:
            done(i, Outcome(_not_run(m.target, _base(m), why)))
            continue
        npz = m.target.eval_npz
        if npz not in eval_sha:
            eval_sha[npz] = fsutil.sha256_file(npz)
        cache_file = cache_dir / f"{_job_key(m.target, m.runtime, m.profile, cfg, eval_sha[npz], m.want_outputs)}.json"
        hit = read_record_file(cache_file)
        if hit is not None:
            done(i, Outcome(hit, cached=True))
        else:
            todo.setdefault(_worker_key(m), []).append((i, cache_file))
    if not todo:
        return out
    facts = _Facts.of([ms[i] for items in todo.values() for i, _ in items])
    with tempfile.TemporaryDirectory(prefix="mb-out-") as tmp:
        for (rt, _, user_file), items in todo.items():
            jobs, checked = [], set()
            for i, _ in items:
                m = ms[i]
                # the file's structure is checked once: before the worker (BYOM) or by its first measurement
                jobs.append({**_job(m.target, rt, m.profile, cfg, m.want_outputs, Path(tmp) / f"outputs{i}.npy",
                                    m.target.prechecked or m.target.artifact in checked), "id": i})
                checked.add(m.target.artifact)
            cache_of, job_of = dict(items), {j["id"]: j for j in jobs}

            def keep(i: int, result: dict) -> None:
                rec = _record(ms[i], cfg, job_of[i], result, facts)
                fsutil.write_atomic(cache_of[i], rec.to_json())
                done(i, Outcome(rec))
            job = worker_job(jobs, runtimes.get(rt).python(), cfg.timeout_s, "fail_rest" if user_file else "resume")
            if user_file:   # a user's own file: its runtime opens it in the OS sandbox (pipeline/sandbox.py)
                job = dataclasses.replace(job, sandbox=sandbox.Sandbox(
                    reads=(user_file, *[f for j in jobs for f in j["input_files"].values()],
                           *[j["eval"] for j in jobs if j.get("eval")]), writes=(tmp,)))
            workers.run(job, on_result=keep)
    return out


def _base(m: Measurement) -> dict:
    return dict(kind="bench", runtime=m.runtime, profile=m.profile.name, threads=m.profile.threads,
                **_identity(m.target))


@dataclass
class _Facts:
    """What the harness works out itself: FLOPs per model, sizes and anatomy per file. All before the
    first worker starts, so no work of the parent's runs beside a timing loop; each one's seconds are
    charged to the first record that uses it."""
    cost: dict[str, tuple[dict, str]]            # model -> (metrics, error)
    files: dict[Path, dict[str, float]]          # artifact -> metrics
    seconds: dict                                # model or artifact -> seconds not yet charged

    @classmethod
    def of(cls, ms: list[Measurement]) -> "_Facts":
        from pipeline.bench import cost
        f = cls({}, {}, {})
        for m in ms:
            t = m.target
            if t.export is not None and t.export.model not in f.cost:
                import models
                t0 = time.perf_counter()
                try:
                    f.cost[t.export.model] = (cost.model_cost(models.get(t.export.model)), "")
                except Exception as e:  # noqa: BLE001 - a model the counter cannot trace keeps its timings
                    f.cost[t.export.model] = ({}, first_line(f"{type(e).__name__}: {e}"))
                f.seconds[t.export.model] = time.perf_counter() - t0
            if t.artifact not in f.files:
                t0 = time.perf_counter()
                f.files[t.artifact] = {"size_bytes": float(fsutil.size_bytes(t.artifact)),
                                       "size_zipped_bytes": float(fsutil.zipped_size(t.artifact)),
                                       **anatomy.of(t.artifact, t.format)}
                f.seconds[t.artifact] = time.perf_counter() - t0
        return f

    def charge(self, key) -> float:
        return self.seconds.pop(key, 0.0)


def _record(m: Measurement, cfg: profiles.BenchConfig, job: dict, result: dict, facts: _Facts) -> Record:
    """A worker's result as the measurement's record, with what the harness adds: sizes, quality on the
    eval set, compute cost, and the peer check's comparison."""
    t = m.target
    if result["status"] != "ok":
        rec = _not_run(t, _base(m), result["error"])
        rec.metrics.update(result.get("metrics", {}))   # what it cost before it failed (time_*_s)
        return rec
    metrics = {**result["metrics"], **facts.files[t.artifact], "time_file_s": facts.charge(t.artifact)}
    info = result["info"]
    if job["outputs"] and Path(job["outputs"]).exists():
        t0 = time.perf_counter()
        quality, ev = _quality(t, np.load(job["outputs"]), job.get("eval_limit", 0))
        metrics.update(quality)
        if ev.get("differ"):
            info["evidence"] = ev
        # the eval set ran in the worker; agreement and accuracy are computed here
        metrics["time_quality_s"] = metrics.get("time_quality_s", 0.0) + time.perf_counter() - t0
    if t.export is not None:
        from pipeline.bench import cost
        flops, error = facts.cost[t.export.model]
        metrics.update({**flops, **cost.achieved({**metrics, **flops}), "time_cost_s": facts.charge(t.export.model)})
        if error:
            info["cost_error"] = error
    if "peer" in result:
        _peer(metrics, info, result["peer"])
    return Record(status="ok", metrics=metrics, info=info, **_base(m))


def _not_run(t: Target, base: dict, error: str) -> Record:
    """A worker that did not measure: `failed`, or a status of the "runs elsewhere" family (`apple_only`)
    when the artifact needs devices this host is not (the one rule: `parity.runs_elsewhere`). Such a
    record keeps the runtime's own error and what was checked here: sizes and the file's facts."""
    from pipeline import parity
    from pipeline.filecheck import coreml
    away, reason = parity.runs_elsewhere(t.artifact, t.format)
    if not away:
        return Record(status="failed", error=first_line(error), **base)
    # ours: the export already read the file (and the Core ML model inside a .pte); a user's: read it now
    facts = ({k: t.export.info[k] for k in APPLE_FACTS if k in t.export.info} if t.export
             else coreml.facts(t.artifact, t.format))
    return Record(status=away, error=first_line(error), **base,
                  metrics={"size_bytes": float(fsutil.size_bytes(t.artifact)),
                           "size_zipped_bytes": float(fsutil.zipped_size(t.artifact))},
                  info={away: reason, **facts})


def _peer(metrics: dict, info: dict, res: dict) -> None:
    """LiteRT's own benchmark on the same file, threads and CPUs (run by the worker right after its own
    timing, never beside it): its median beside ours, raw and net of each harness's fixed cost."""
    from pipeline.bench import peer
    if "error" in res:
        info["peer_error"] = res["error"]
        return
    ours_trivial = metrics.get("trivial_model_p50_us", float("nan")) / 1e3
    metrics.update(peer.compare(metrics["latency_p50_ms"], res, ours_trivial,
                                res.get("trivial_median_ms", float("nan"))))
    info["peer"] = {"tool": "litert-benchmark (ai_edge_litert.tools.benchmark_litert_model)",
                    "api": "CompiledModel.run_by_name", "fully_accelerated": res.get("fully_accelerated")}


def targets_from_exports(export_records: list[Record], artifacts: Path) -> list[Target]:
    import models
    from pipeline.generative import is_generative
    from pipeline.train import train_dir
    out = []
    for r in export_records:
        if r.kind != "export" or r.status != "ok" or is_generative(r):   # measured by pipeline/generative/
            continue
        spec = models.get(r.model)
        layout = "nhwc" if r.info.get("input_layout") == "nhwc" else "same"
        out.append(Target(artifact=resolve(r.artifact), format=r.format,
                          runtimes=tuple(r.info.get("runtimes", runtimes.for_format(r.format))),
                          export=r, eval_npz=train_dir(artifacts, r.model) / "eval.npz",
                          layout=layout, task=spec.task))
    return out


def plan(targets: list[Target], cfg: profiles.BenchConfig) -> list[tuple[Target, str, list[profiles.Profile]]]:
    """(artifact, runtime, its profiles) to measure: every profile, but only the first for the runtimes
    `cfg.one_profile_runtimes` names."""
    return [(t, rt, [profiles.get(p) for p in cfg.profiles if p == cfg.profiles[0] or rt not in cfg.one_profile_runtimes])
            for t in targets for rt in t.runtimes]


def run(targets: list[Target], cfg: profiles.BenchConfig, cache_dir: Path, log=print) -> list[Record]:
    groups = plan(targets, cfg)
    # accuracy/agreement do not depend on the profile: evaluated once, on the first profile
    ms = [Measurement(t, rt, p, p.name == cfg.profiles[0]) for t, rt, profs in groups for p in profs]
    members, k = [], 0
    for _, _, profs in groups:
        members.append(list(range(k, k + len(profs))))
        k += len(profs)
    group_of = {i: g for g, idx in enumerate(members) for i in idx}
    outcomes: list[Outcome | None] = [None] * len(ms)
    logged, start = [], time.perf_counter()

    def tell(i: int, o: Outcome) -> None:
        """Once every profile of an artifact x runtime is in: the parity verdict, then one line each."""
        outcomes[i] = o
        g = group_of[i]
        if any(outcomes[j] is None for j in members[g]):
            return
        t, rt, _ = groups[g]
        got = [outcomes[j] for j in members[g]]
        v = _apply_parity(t, [o.record for o in got])
        for o in got:
            r = o.record
            logged.append(r)
            name = ArtifactId.of(r).label if t.export else str(t.artifact)
            # the figures the verdict judged (the decisive samples' top-1, the bound it met), no others
            prefix = parity.eval_prefix(r.metrics)
            msg = (f"p50 {r.metrics['latency_p50_ms']:.3f} ms" +
                   (f", {v.figures}" + (f" ({prefix})" if prefix else "")
                    if v is not None and "max_abs_diff" in r.metrics else "")
                   if r.status == "ok" else f"{r.status}: {r.error}")
            spent = sum(v for k, v in r.metrics.items() if k.startswith("time_") and v == v)
            when = " (cached)" if o.cached else f" ({spent:.1f}s)"
            log(f"[bench {len(logged)}/{len(ms)}{progress.left(len(logged), len(ms), time.perf_counter() - start)}] "
                f"{name} {rt} {r.profile}: {msg}{when}")
    measure(ms, cfg, cache_dir, tell)
    return [o.record for o in outcomes]


def _apply_parity(t: Target, recs: list[Record]):
    """The parity rule (pipeline/parity.py) on our artifacts: judged from the profile that ran the eval set,
    applied to every profile of this artifact x runtime (a wrong artifact is wrong under any profile).
    Judged here, not in the cached record, so a changed tolerance applies without re-measuring. Returns
    the Verdict (None: nothing judged)."""
    import models
    from pipeline import parity
    judged = [r for r in recs if parity.ran(r.status) and "max_abs_diff" in r.metrics]
    if t.export is None or not judged:
        return None
    try:
        spec = models.get(t.export.model)
    except KeyError:
        return None
    v = parity.judge(judged[0].metrics, t.export.quantization, parity.for_zoo(spec, t.export.quantization))
    for r in recs:
        if parity.ran(r.status):
            r.status, r.error = v.status, v.reason
    if v.status == "mismatch":
        explain_mismatch(t, recs, judged[0].info.get("evidence"))
    return v


def explain_mismatch(t: Target, recs: list[Record], ev: dict | None) -> None:
    """Every profile's mismatch record carries the evidence of the profile that ran the eval set, and
    what the file computes (`pipeline/explain`), read once per artifact."""
    from pipeline.explain import filefacts
    facts = filefacts.of(t.artifact, t.format)
    for r in recs:
        if r.status == "mismatch":
            r.info.update({"file": facts, **({"evidence": ev} if ev else {})})


def byom_target(path: Path, shapes: tuple = (), input_files: tuple = ()) -> Target:
    """A user's own file: the format comes from the file's bytes, checked (once, in a child process under
    a memory and time limit) before any runtime sees it."""
    from pipeline.filecheck.savedmodel import folder_files
    from pipeline.filecheck.validate import check_isolated
    if Path(path).is_dir():
        folder_files(Path(path))     # a .mlpackage folder: a link out of it is refused, never hashed or read
    fmt = check_isolated(path)
    return Target(artifact=path.resolve(), format=fmt, runtimes=tuple(runtimes.for_format(fmt)), shapes=shapes,
                  prechecked=True, input_files=tuple(input_files))


def config_with(**overrides) -> profiles.BenchConfig:
    return dataclasses.replace(profiles.BenchConfig(), **{k: v for k, v in overrides.items() if v is not None})
