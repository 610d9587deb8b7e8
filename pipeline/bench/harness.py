"""Benchmark artifacts with the real mobile runtimes, each measurement in an isolated worker.

    python -m pipeline bench                      # every exported artifact of every model
    python -m pipeline bench my_model.tflite      # bring your own model (no labels needed)

For each (artifact x runtime x device profile) one fresh worker process loads and runs the artifact
(`pipeline/bench/worker.py`); a crash, hang or out-of-memory becomes a `failed` record with its signal or
exit code. Results are cached by content hash (artifact, eval data, settings, worker code).

Rigor (see the report's "Full benchmark metrics" section): each worker times `repeats` steady runs of
the bound inference call (spread of their medians = stability), the same runtime on a one-op model
(fixed cost per call), and on the first profile a per-operator profile (`pipeline/bench/opprofile.py`).
Our models get FLOPs/params (`pipeline/bench/cost.py`); .tflite on LiteRT is checked against LiteRT's own
`litert-benchmark` (`pipeline/bench/peer.py`).
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil, progress, runtimes, workers
from pipeline.artifact import ArtifactId, resolve
from pipeline.bench import anatomy, profiles
from pipeline.bench.stats import agreement
from pipeline.schema import Record, first_line, read_record_file

HERE = Path(__file__).parent
WORKER_CODE = [HERE / f for f in ("worker.py", "stats.py", "harness.py", "opprofile.py", "peer.py", "cost.py",
                                  "anatomy.py")] + [HERE.parent / "workers.py"] + \
    sorted((HERE.parent / "runtimes").glob("*.py")) + sorted((HERE / "data").glob("*"))


# export facts an apple_only bench record carries (coreml_paths.py writes them)
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


def _job_key(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, eval_sha: str,
             want_outputs: bool) -> str:
    sidecar = t.artifact.with_suffix(".etrecord")   # names the operators in the profile (opprofile.py)
    return fsutil.sha256_text(fsutil.sha256_file(t.artifact), runtime, repr(prof), repr(cfg),
                              fsutil.sha256_file(sidecar) if sidecar.exists() else "",
                              eval_sha, t.layout, repr(t.shapes), str(want_outputs),
                              *[f"{n}={fsutil.sha256_file(Path(f))}" for n, f in t.input_files],
                              fsutil.source_hash(WORKER_CODE))


def worker_job(jobs: list[dict], python: str, timeout_s: float) -> workers.Job:
    """The bench's worker job: one item per profile, measured in turn by one process; a death fails
    the profile it was measuring and every profile after it (each finished one is kept)."""
    return workers.Job("pipeline.bench.worker", items=tuple({**j, "id": i} for i, j in enumerate(jobs)),
                       python=python, timeout_s=timeout_s, after_death="fail_rest")


def _identity(t: Target) -> dict:
    e = t.export
    if e is not None:
        return dict(model=e.model, source=e.source, path=e.path, format=e.format, framework=e.framework,
                    quantization=e.quantization, artifact=e.artifact, artifact_sha256=e.artifact_sha256)
    return dict(model=str(t.artifact), path="user", format=t.format, artifact=str(t.artifact),
                artifact_sha256=fsutil.sha256_file(t.artifact))


def _quality(t: Target, outputs: np.ndarray) -> dict[str, float]:
    with np.load(t.eval_npz) as z:
        ref = z[f"ref_{t.export.source}"][:len(outputs)]
        y = z["y"][:len(outputs)]
        x = z["x"][:len(outputs)]
    m = agreement(outputs, ref)
    if t.task == "classification":
        m["accuracy"] = float((outputs.argmax(-1) == y).mean())
        m["reference_accuracy"] = float((ref.argmax(-1) == y).mean())
    elif t.task == "reconstruction":
        m["reconstruction_mse"] = float(((outputs - x.reshape(len(x), -1)) ** 2).mean())
        m["reference_reconstruction_mse"] = float(((ref.reshape(len(ref), -1) - x.reshape(len(x), -1)) ** 2).mean())
    m["eval_samples"] = float(len(outputs))
    return m


def _job(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, want_outputs: bool,
         outputs: Path, prechecked: bool = False) -> dict:
    """One worker sub-job: one artifact, one runtime, one profile."""
    return {"root": str(fsutil.ROOT), "artifact": str(t.artifact), "runtime": runtime, "prechecked": prechecked,
            "threads": prof.threads, "cpus": list(prof.cpus), "mem_limit_mb": prof.mem_limit_mb,
            "warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_seconds": cfg.min_seconds,
            "max_runs": cfg.max_runs, "max_seconds": cfg.max_seconds,
            "eval": str(t.eval_npz) if t.eval_npz else "", "layout": t.layout,
            "eval_limit": cfg.eval_limit,
            "outputs": str(outputs) if want_outputs and t.eval_npz else "",
            "shapes": [list(s) for s in t.shapes], "input_files": dict(t.input_files),
            "repeats": cfg.repeats if prof.name == cfg.profiles[0] and runtime not in
            cfg.compat_runtimes else cfg.other_repeats,
            "op_profile": cfg.op_profile and want_outputs and runtime not in cfg.compat_runtimes}


def measure_one(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, cache_dir: Path,
                want_outputs: bool) -> Outcome:
    """One artifact, one runtime, one profile (`measure_profiles` with a single profile)."""
    return measure_profiles(t, runtime, [(prof, want_outputs)], cfg, cache_dir)[0]


def measure_profiles(t: Target, runtime: str, profs: list[tuple[profiles.Profile, bool]],
                     cfg: profiles.BenchConfig, cache_dir: Path) -> list[Outcome]:
    """One artifact with one runtime under several profiles: one Outcome per (profile, want_outputs).

    The uncached profiles share one worker process (the runtime's import, ~6 s for ExecuTorch, is paid
    once); a crash or hang in it fails only the profiles it had not finished."""
    adapter = runtimes.get(runtime)
    bases = [dict(kind="bench", runtime=runtime, profile=p.name, threads=p.threads, **_identity(t)) for p, _ in profs]
    if not adapter.available():
        return [Outcome(Record(status="skipped", error=f"runtime {runtime} is not installed: "
                               f"{adapter.INSTALL_HINT}", **b)) for b in bases]
    eval_sha = fsutil.sha256_file(t.eval_npz) if t.eval_npz else ""
    out: list[Outcome | None] = [None] * len(profs)
    todo = []
    for i, (prof, want_outputs) in enumerate(profs):
        cache_file = cache_dir / f"{_job_key(t, runtime, prof, cfg, eval_sha, want_outputs)}.json"
        hit = read_record_file(cache_file)
        if hit is not None:
            out[i] = Outcome(hit, cached=True)
            continue
        todo.append((i, prof, want_outputs, cache_file))
    if not todo:
        return out
    with tempfile.TemporaryDirectory(prefix="mb-out-") as tmp:
        # the file's structure is checked once per file: before the worker (BYOM) or by its first job
        jobs = [_job(t, runtime, prof, cfg, want_outputs, Path(tmp) / f"outputs{i}.npy", t.prechecked or k > 0)
                for k, (i, prof, want_outputs, _) in enumerate(todo)]
        results = list(workers.run(worker_job(jobs, adapter.python(), cfg.timeout_s)).values())
        file_metrics: dict[str, float] = {}    # the same file under every profile: read it once
        for (i, prof, _, cache_file), job, result in zip(todo, jobs, results):
            base = bases[i]
            if result["status"] != "ok":
                rec = _not_run(t, base, result["error"])
            else:
                t0 = time.perf_counter()
                if not file_metrics:
                    file_metrics = {"size_bytes": float(fsutil.size_bytes(t.artifact)),
                                    "size_zipped_bytes": float(fsutil.zipped_size(t.artifact)),
                                    **anatomy.of(t.artifact, t.format)}
                metrics = {**result["metrics"], **file_metrics, "time_file_s": time.perf_counter() - t0}
                info = result["info"]
                if job["outputs"] and Path(job["outputs"]).exists():
                    t0 = time.perf_counter()
                    metrics.update(_quality(t, np.load(job["outputs"])))
                    # the eval set ran in the worker; agreement and accuracy are computed here
                    metrics["time_quality_s"] = metrics.get("time_quality_s", 0.0) + time.perf_counter() - t0
                metrics.update(_rigor(t, runtime, prof, cfg, metrics, info, first=prof.name == cfg.profiles[0]))
                rec = Record(status="ok", metrics=metrics, info=info, **base)
            fsutil.write_atomic(cache_file, rec.to_json())
            out[i] = Outcome(rec)
    return out


def _not_run(t: Target, base: dict, error: str) -> Record:
    """A worker that did not measure: `failed`, or `apple_only` when the artifact needs Apple's Core ML
    and this host has none (the one rule: pipeline/filecheck/coreml.apple_only). An Apple-only record
    keeps the runtime's own error and what was checked here: sizes and the Core ML facts."""
    from pipeline.filecheck import coreml
    reason = coreml.apple_only(t.artifact, t.format)
    if not reason:
        return Record(status="failed", error=first_line(error), **base)
    # ours: the export already read the file (and the Core ML model inside a .pte); a user's: read it now
    facts = ({k: t.export.info[k] for k in APPLE_FACTS if k in t.export.info} if t.export
             else coreml.facts(t.artifact, t.format))
    return Record(status="apple_only", error=first_line(error), **base,
                  metrics={"size_bytes": float(fsutil.size_bytes(t.artifact)),
                           "size_zipped_bytes": float(fsutil.zipped_size(t.artifact))},
                  info={"apple_only": reason, **facts})


def _rigor(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, metrics: dict,
           info: dict, first: bool = True) -> dict:
    """Compute cost (our models) and the peer check (LiteRT's own benchmark, .tflite on litert)."""
    from pipeline.bench import cost
    from pipeline.bench import peer
    out: dict[str, float] = {}
    if t.export is not None:
        import models
        t0 = time.perf_counter()
        try:
            out.update(cost.model_cost(models.get(t.export.model)))
            out.update(cost.achieved({**metrics, **out}))
        except Exception as e:  # noqa: BLE001 - a model the counter cannot trace keeps its timings
            info["cost_error"] = first_line(f"{type(e).__name__}: {e}")
        out["time_cost_s"] = time.perf_counter() - t0
    if cfg.peer and first and runtime == "litert" and t.format == "tflite" and not t.shapes:
        t0 = time.perf_counter()
        runs = int(min(max(metrics["runs"] / max(cfg.repeats, 1), 100), 5000))
        res = peer.run_peer(t.artifact, prof.threads, prof.cpus, prof.mem_limit_mb, runs=runs,
                            warmup=cfg.warmup, timeout_s=cfg.timeout_s)
        if "error" in res:
            info["peer_error"] = res["error"]
        else:
            ours_trivial = metrics.get("trivial_model_p50_us", float("nan")) / 1e3
            out.update(peer.compare(metrics["latency_p50_ms"], res, ours_trivial,
                                    peer.trivial_median_ms(prof.threads, prof.cpus, prof.mem_limit_mb)))
            info["peer"] = {"tool": "litert-benchmark (ai_edge_litert.tools.benchmark_litert_model)",
                            "api": "CompiledModel.run_by_name", "fully_accelerated": res.get("fully_accelerated")}
        out["time_peer_s"] = time.perf_counter() - t0
    return out


def targets_from_exports(export_records: list[Record], artifacts: Path) -> list[Target]:
    import models
    out = []
    for r in export_records:
        if r.kind != "export" or r.status != "ok":
            continue
        spec = models.get(r.model)
        layout = "nhwc" if r.info.get("input_layout") == "nhwc" else "same"
        out.append(Target(artifact=resolve(r.artifact), format=r.format,
                          runtimes=tuple(r.info.get("runtimes", runtimes.for_format(r.format))),
                          export=r, eval_npz=artifacts / r.model / "train" / "eval.npz",
                          layout=layout, task=spec.task))
    return out


def run(targets: list[Target], cfg: profiles.BenchConfig, cache_dir: Path, log=print) -> list[Record]:
    groups = [(t, rt, [profiles.get(p) for p in cfg.profiles if p == cfg.profiles[0] or rt not in cfg.compat_runtimes])
              for t in targets for rt in t.runtimes]
    total = sum(len(ps) for _, _, ps in groups)
    fresh = _try_apple_only(groups, cfg, cache_dir, log)
    records, i, start = [], 0, time.perf_counter()
    for t, rt, profs in groups:
        t0 = time.perf_counter()
        # accuracy/agreement do not depend on the profile: evaluate once, on the first profile.
        # Profiles with the same memory ceiling share a worker; another ceiling gets a worker of its own
        # (RLIMIT_AS can be lowered but never lifted again)
        chunks: dict[int, list] = {}
        for p in profs:
            chunks.setdefault(p.mem_limit_mb, []).append((p, p.name == cfg.profiles[0]))
        outcomes = []
        for chunk in chunks.values():
            outcomes += measure_profiles(t, rt, chunk, cfg, cache_dir)
        took = time.perf_counter() - t0
        _apply_parity(t, [o.record for o in outcomes])
        for o in outcomes:
            i += 1
            r = o.record
            name = ArtifactId.of(r).label if t.export else str(t.artifact)
            msg = (f"p50 {r.metrics['latency_p50_ms']:.3f} ms" +
                   (f", agree {r.metrics['top1_agreement']:.3f}" if "top1_agreement" in r.metrics else "")
                   if r.status == "ok" else f"{r.status}: {r.error}")
            when = f" ({took:.1f}s for {len(outcomes)} profiles)" if not o.cached else \
                "" if (t.artifact, rt) in fresh else " (cached)"
            log(f"[bench {i}/{total}{progress.left(i, total, time.perf_counter() - start)}] "
                f"{name} {rt} {r.profile}: {msg}{when}")
            records.append(r)
    return records


def _try_apple_only(groups: list, cfg: profiles.BenchConfig, cache_dir: Path, log) -> set:
    """Artifacts only Apple's Core ML runs, on a host without it (`coreml.apple_only`): nothing can be
    timed, so each is loaded once, for the runtime's own error, and ONE worker per runtime loads them
    all (its import, 6-30 s, paid once, not per artifact). The records go to the cache under the keys
    `measure_profiles` looks up, one per profile. Returns the (artifact, runtime) pairs it tried."""
    from pipeline.filecheck.coreml import apple_only
    todo: dict[str, list] = {}
    for t, rt, profs in groups:
        if not apple_only(t.artifact, t.format) or not runtimes.get(rt).available():
            continue
        eval_sha = fsutil.sha256_file(t.eval_npz) if t.eval_npz else ""
        files = [cache_dir / f"{_job_key(t, rt, p, cfg, eval_sha, p.name == cfg.profiles[0])}.json" for p in profs]
        if not all(f.exists() for f in files):
            todo.setdefault(rt, []).append((t, profs, files))
    for rt, items in todo.items():
        log(f"[bench] {len(items)} Core ML artifact(s): one {rt} worker tries to load them (no Core ML here)")
        with tempfile.TemporaryDirectory(prefix="mb-out-") as tmp:
            # the first profile without its memory limit: only the load is attempted
            jobs = [{**_job(t, rt, profs[0], cfg, False, Path(tmp) / "unused.npy"), "mem_limit_mb": 0}
                    for t, profs, _ in items]
            results = list(workers.run(worker_job(jobs, runtimes.get(rt).python(), cfg.timeout_s)).values())
        for (t, profs, files), result in zip(items, results):
            if result["status"] == "ok":
                continue   # it loaded after all: measure_profiles measures it properly
            for p, f in zip(profs, files):
                base = dict(kind="bench", runtime=rt, profile=p.name, threads=p.threads, **_identity(t))
                fsutil.write_atomic(f, _not_run(t, base, result["error"]).to_json())
    return {(t.artifact, rt) for items in todo.values() for t, _, _ in items}


def _apply_parity(t: Target, recs: list[Record]) -> None:
    """The parity rule (pipeline/parity.py) on our artifacts: judged from the profile that ran the eval set,
    applied to every profile of this artifact x runtime (a wrong artifact is wrong under any profile).
    Judged here, not in the cached record, so a changed tolerance applies without re-measuring."""
    import models
    from pipeline import parity
    judged = [r for r in recs if r.status in ("ok", "mismatch") and "max_abs_diff" in r.metrics]
    if t.export is None or not judged:
        return
    try:
        spec = models.get(t.export.model)
    except KeyError:
        return
    v = parity.judge(judged[0].metrics, t.export.quantization, parity.for_zoo(spec, t.export.quantization))
    for r in recs:
        if r.status in ("ok", "mismatch"):
            r.status, r.error = v.status, v.reason


def byom_target(path: Path, shapes: tuple = (), input_files: tuple = ()) -> Target:
    """A user's own file: the format comes from the file's bytes, checked (once, in a child process under
    a memory and time limit) before any runtime sees it."""
    from pipeline.filecheck.validate import check_isolated
    fmt = check_isolated(path)
    return Target(artifact=path.resolve(), format=fmt, runtimes=tuple(runtimes.for_format(fmt)), shapes=shapes,
                  prechecked=True, input_files=tuple(input_files))


def config_with(**overrides) -> profiles.BenchConfig:
    return dataclasses.replace(profiles.BenchConfig(), **{k: v for k, v in overrides.items() if v is not None})
