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
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil, procutil, runtimes
from pipeline.artifact import ArtifactId, resolve
from pipeline.bench import anatomy, profiles
from pipeline.bench.stats import agreement
from pipeline.schema import Record, first_line

HERE = Path(__file__).parent
WORKER_CODE = [HERE / f for f in ("worker.py", "stats.py", "harness.py", "opprofile.py", "peer.py", "cost.py",
                                  "anatomy.py")] + \
    sorted((HERE.parent / "runtimes").glob("*.py")) + sorted((HERE / "data").glob("*"))


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


@dataclass
class Outcome:
    record: Record
    cached: bool = False


def zipped_size(path: Path) -> int:
    """Size as the file would sit deflated in an APK/IPA (zip, deflate level 9)."""
    return len(zlib.compress(path.read_bytes(), 9))


def _job_key(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, eval_sha: str,
             want_outputs: bool) -> str:
    sidecar = t.artifact.with_suffix(".etrecord")   # names the operators in the profile (opprofile.py)
    return fsutil.sha256_text(fsutil.sha256_file(t.artifact), runtime, repr(prof), repr(cfg),
                              fsutil.sha256_file(sidecar) if sidecar.exists() else "",
                              eval_sha, t.layout, repr(t.shapes), str(want_outputs),
                              fsutil.source_hash(WORKER_CODE))


def _python_for(runtime: str) -> str:
    adapter = runtimes.get(runtime)
    return str(getattr(adapter, "PYTHON", sys.executable))


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"worker killed by signal {signal.Signals(-rc).name} ({-rc})"
        except ValueError:
            return f"worker killed by signal {-rc}"
    return f"worker exited with code {rc}"


def run_worker(job: dict, python: str, timeout_s: float) -> list[dict]:
    """Run one worker on job["jobs"] (one per profile); whatever happens to it, return one result dict
    per sub-job (never raise). The worker rewrites its result file after each sub-job, so a crash or a
    hang keeps what it finished and fails the rest with the exit code or signal."""
    n = len(job["jobs"])
    with tempfile.TemporaryDirectory(prefix="mb-worker-") as tmp:
        job = {**job, "result": str(Path(tmp) / "result.json")}
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **procutil.child_env()}
        proc = subprocess.Popen([python, "-m", "pipeline.bench.worker", str(job_file)], cwd=fsutil.ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        failure = ""
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            procutil.kill_group(proc.pid)
            out, _ = proc.communicate()
            failure = f"worker timed out after {timeout_s:.0f}s (killed)"
        except BaseException:
            procutil.kill_group(proc.pid)  # interrupted harness: the worker is in its own session
            raise
        result_file = Path(job["result"])
        done = json.loads(result_file.read_text())["results"] if result_file.exists() else []
        if not failure and proc.returncode != 0:
            tail = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()][-1:]
            failure = _describe_exit(proc.returncode) + (f"; last output: {tail[0][:200]}" if tail else "")
        if failure and done and done[-1].get("status") == "ok" and len(done) == n:
            done[-1] = {"status": "failed", "error": failure}   # died on its way out of the last one
        return done + [{"status": "failed", "error": failure or "worker wrote no result"}] * (n - len(done))


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
        if cache_file.exists():
            try:
                out[i] = Outcome(Record.from_dict(json.loads(cache_file.read_text())), cached=True)
                continue
            except (ValueError, TypeError):
                pass
        todo.append((i, prof, want_outputs, cache_file))
    if not todo:
        return out
    with tempfile.TemporaryDirectory(prefix="mb-out-") as tmp:
        jobs = []
        for i, prof, want_outputs, _ in todo:
            jobs.append({"root": str(fsutil.ROOT), "artifact": str(t.artifact), "runtime": runtime,
                         "threads": prof.threads, "cpus": list(prof.cpus), "mem_limit_mb": prof.mem_limit_mb,
                         "warmup": cfg.warmup, "min_runs": cfg.min_runs, "min_seconds": cfg.min_seconds,
                         "max_runs": cfg.max_runs, "max_seconds": cfg.max_seconds,
                         "eval": str(t.eval_npz) if t.eval_npz else "", "layout": t.layout,
                         "eval_limit": cfg.eval_limit,
                         "outputs": str(Path(tmp) / f"outputs{i}.npy") if want_outputs and t.eval_npz else "",
                         "shapes": [list(s) for s in t.shapes],
                         "repeats": cfg.repeats if prof.name == cfg.profiles[0] and runtime not in
                         cfg.compat_runtimes else cfg.other_repeats,
                         "op_profile": cfg.op_profile and want_outputs and runtime not in cfg.compat_runtimes})
        results = run_worker({"jobs": jobs}, _python_for(runtime), cfg.timeout_s * len(jobs))
        file_metrics: dict[str, float] = {}    # the same file under every profile: read it once
        for (i, prof, _, cache_file), job, result in zip(todo, jobs, results):
            base = bases[i]
            if result["status"] != "ok":
                rec = Record(status="failed", error=first_line(result["error"]), **base)
            else:
                if not file_metrics:
                    file_metrics = {"size_bytes": float(t.artifact.stat().st_size),
                                    "size_zipped_bytes": float(zipped_size(t.artifact)),
                                    **anatomy.of(t.artifact, t.format)}
                metrics = {**result["metrics"], **file_metrics}
                info = result["info"]
                if job["outputs"] and Path(job["outputs"]).exists():
                    metrics.update(_quality(t, np.load(job["outputs"])))
                metrics.update(_rigor(t, runtime, prof, cfg, metrics, info, first=prof.name == cfg.profiles[0]))
                rec = Record(status="ok", metrics=metrics, info=info, **base)
            fsutil.write_atomic(cache_file, rec.to_json())
            out[i] = Outcome(rec)
    return out


def _rigor(t: Target, runtime: str, prof: profiles.Profile, cfg: profiles.BenchConfig, metrics: dict,
           info: dict, first: bool = True) -> dict:
    """Compute cost (our models) and the peer check (LiteRT's own benchmark, .tflite on litert)."""
    from pipeline.bench import cost
    from pipeline.bench import peer
    out: dict[str, float] = {}
    if t.export is not None:
        import models
        try:
            out.update(cost.model_cost(models.get(t.export.model)))
            out.update(cost.achieved({**metrics, **out}))
        except Exception as e:  # noqa: BLE001 - a model the counter cannot trace keeps its timings
            info["cost_error"] = first_line(f"{type(e).__name__}: {e}")
    if cfg.peer and first and runtime == "litert" and t.format == "tflite" and not t.shapes:
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
    records, i = [], 0
    for t, rt, profs in groups:
        t0 = time.perf_counter()
        # accuracy/agreement do not depend on the profile: evaluate once, on the first profile.
        # A memory-limited profile gets a worker of its own (RLIMIT_AS cannot be lifted again).
        plain = [(p, p.name == cfg.profiles[0]) for p in profs if not p.mem_limit_mb]
        limited = [[(p, p.name == cfg.profiles[0])] for p in profs if p.mem_limit_mb]
        outcomes = []
        for chunk in ([plain] if plain else []) + limited:
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
            log(f"[bench {i}/{total}] {name} {rt} {r.profile}: {msg}"
                f"{' (cached)' if o.cached else f' ({took:.1f}s for {len(outcomes)} profiles)'}")
            records.append(r)
    return records


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


def byom_target(path: Path, shapes: tuple = ()) -> Target:
    """A user's own file: the format comes from the file's bytes, checked before any runtime sees it."""
    from pipeline.filecheck.validate import check_model_file
    fmt = check_model_file(path)
    return Target(artifact=path.resolve(), format=fmt, runtimes=tuple(runtimes.for_format(fmt)), shapes=shapes)


def config_with(**overrides) -> profiles.BenchConfig:
    return dataclasses.replace(profiles.BenchConfig(), **{k: v for k, v in overrides.items() if v is not None})
