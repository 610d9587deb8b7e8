"""The generation bench (parent side): every generative artifact x its runtime x each device profile,
measured in worker processes, compared with its reference, judged, as `bench` records.

    recs = bench.run(bench.targets(export_records, artifacts), cfg, results / "cache" / "generate")

1. One `Workload` per model (from its held-out token windows, `artifacts/<m>/train/eval.npz` `x`):
   P prompts of N tokens (N = the smallest prefill bound among the model's artifacts, so every runtime's
   prefill entry point runs near its bound), M greedy steps, W held-out windows of `context` tokens.
2. The reference of each source model (`reference.py`: a full forward without cache) in one worker.
3. The artifacts, one worker per runtime and memory ceiling (`worker.py`): TTFT, decode tokens/s and
   peak RSS on every profile; on the first profile also the parity set (logits of every step, held-out
   perplexity, bound probes).
4. Records (`compare.py` figures, `parity.GENERATIVE` verdicts), cached by content hash (artifact,
   workload, reference, profile, settings, this code): a warm run measures nothing again.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil, parity, runtimes, workers
from pipeline.artifact import ArtifactId, resolve
from pipeline.bench import profiles
from pipeline.generative import compare, generate, is_generative, session_class
from pipeline.generative.generate import Workload
from pipeline.generative.session import LMFacts
from pipeline.schema import Record, first_line, read_record_file

HERE = Path(__file__).parent
CODE = sorted(HERE.glob("*.py")) + [HERE.parent / "workers.py", HERE.parent / "bench" / "worker.py",
                                    HERE.parent / "bench" / "stats.py"] + sorted((HERE.parent / "runtimes").glob("*.py"))
REFERENCE_CODE = [HERE / "reference.py", HERE / "generate.py"]   # what a reference's outputs depend on


@dataclass(frozen=True)
class GenConfig:
    """How much generation one measurement does (few prompts, small M: the tier's 10-minute budget)."""
    prompts: int = 4                 # P prompts per measurement (+1 untimed first run: the cold TTFT)
    new_tokens: int = 16             # M greedy tokens per prompt (the first from the prefill)
    heldout_windows: int = 2         # W held-out windows of `context` tokens (teacher-forced perplexity)
    timeout_s: float = 600.0         # one item without progress for this long: killed, recorded

    def __post_init__(self) -> None:
        if self.prompts < 1 or self.new_tokens < 3 or self.heldout_windows < 1 or self.timeout_s <= 0:
            raise ValueError(f"generation bench: need prompts >= 1, new_tokens >= 3 (decode rate from the second "
                             f"decoded token), heldout_windows >= 1: {self}")


@dataclass(frozen=True)
class Target:
    """One generative artifact, from its export record."""
    artifact: Path
    export: Record
    facts: LMFacts
    reference: dict          # {"kind": "hf", "path": ...}: the source model (reference.py)
    heldout_npz: Path        # token windows `x` [n, T]

    @property
    def runtime(self) -> str:
        return session_class(self.facts.convention).RUNTIME


def reference_of(r: Record, artifacts: Path) -> dict | None:
    """The source model of an artifact, as reference.py loads it; None when there is none here. The
    PyTorch twin (and a user's LM): its Hugging Face folder; a Keras twin: the registry's builder with the
    twin's weights (`train/<twin>.weights.h5`, llm-contract)."""
    g = r.info["generation"]
    if r.source in ("torch", "") and g.get("hf_folder"):
        return {"kind": "hf", "path": str(resolve(g["hf_folder"]))}
    weights = Path(artifacts) / r.model / "train" / f"{r.source}.weights.h5"
    if r.source in ("keras", "keras_tw") and weights.exists():
        return {"kind": "keras", "model": r.model, "path": str(weights.resolve())}
    return None


def targets(export_records: list[Record], artifacts: Path) -> tuple[list[Target], list[Record]]:
    """-> (targets, records of what cannot be measured: `skipped` with the reason)."""
    out, skipped = [], []
    for r in export_records:
        if r.kind != "export" or r.status != "ok" or not is_generative(r):
            continue
        facts = LMFacts.of(r.info)
        ref = reference_of(r, artifacts)
        t = Target(resolve(r.artifact), r, facts, ref or {}, Path(artifacts) / r.model / "train" / "eval.npz")
        if ref is None:
            skipped.append(Record(status="skipped", error=f"no reference model to compare {r.source} artifacts "
                                  "with (the generation bench runs the source twin as its reference)", **_base(t, None)))
        else:
            out.append(t)
    return out, skipped


def _facts(t: Target) -> dict:
    """What every generation record carries in info["generation"] (the report keys on it)."""
    return {k: t.export.info["generation"].get(k) for k in
            ("convention", "context", "prefill_max", "prefill_lengths", "vocab", "entry_points")}


def _base(t: Target, prof: profiles.Profile | None) -> dict:
    """A generation record's identity fields, and its info["generation"]."""
    e = t.export
    return dict(kind="bench", info={"generation": _facts(t)}, model=e.model, source=e.source, path=e.path,
                format=e.format, framework=e.framework,
                quantization=e.quantization, runtime=t.runtime, profile=prof.name if prof else "",
                threads=prof.threads if prof else 0, artifact=e.artifact, artifact_sha256=e.artifact_sha256)


def workload(ts: list[Target], g: GenConfig) -> Workload:
    """A zoo model's workload, from its held-out token windows (`eval.npz` `x` [n, T]): the first N
    tokens of P windows as prompts (N = the smallest prefill bound among the model's artifacts, so every
    runtime's prefill entry point runs near its bound), W more windows teacher-forced (perplexity)."""
    with np.load(ts[0].heldout_npz) as z:
        x = np.asarray(z["x"], np.int64)
    C = min(t.facts.context for t in ts)
    T = min(C, x.shape[1])
    N = min(min(session_class(t.facts.convention).prefill_bound(t.facts) for t in ts), T - g.new_tokens)
    if N < 1:
        raise ValueError(f"{ts[0].export.model}: windows of {x.shape[1]} tokens leave no room for a prompt and "
                         f"{g.new_tokens} tokens in a {C}-position cache")
    rows = lambda k, start: x[[(start + i) % len(x) for i in range(k)]]   # noqa: E731 - few windows: reuse them
    return assemble(ts, g, rows(g.prompts, 0)[:, :N], (), rows(g.heldout_windows, g.prompts)[:, :T], N, x.reshape(-1))


def assemble(ts: list[Target], g: GenConfig, prompts: np.ndarray, lengths: tuple, heldout: np.ndarray, k: int,
             text: np.ndarray) -> Workload:
    """The workload of one model's artifacts: the bound probes try 1, each artifact's prefill bound and one
    past it, and a decode one past the smallest cache, all on `text` (tiled to fill that cache)."""
    C = min(t.facts.context for t in ts)
    bounds = {session_class(t.facts.convention).prefill_bound(t.facts) for t in ts}
    probes = sorted({n for b in bounds for n in (1, b, b + 1) if n < C})
    return Workload(prompts=prompts, steps=g.new_tokens, heldout=heldout, heldout_prefill=k,
                    probe_tokens=np.resize(np.asarray(text, np.int64), C + 1), probe_lengths=tuple(probes),
                    prompt_lengths=tuple(lengths))


def _workload_sha(w: Workload) -> str:
    return fsutil.sha256_text(w.prompts.tobytes(), w.heldout.tobytes(), w.probe_tokens.tobytes(), repr((
        w.steps, w.heldout_prefill, w.probe_lengths, w.prompt_lengths, w.prompts.shape, w.heldout.shape)))


def _versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    out = []
    for n in names:
        try:
            out.append(f"{n}={version(n)}")
        except PackageNotFoundError:
            out.append(f"{n}=none")
    return ",".join(out)


def run(ts: list[Target], cfg: profiles.BenchConfig, cache: Path, g: GenConfig = GenConfig(),
        device: bool = False, workloads: dict[str, Workload] | None = None, user_model: bool = False,
        log=print) -> list[Record]:
    """Every target on every profile of `cfg` (records in target x profile order), then with `device`
    the emulated ARM64 cores (`device.py`: instructions per decoded token). `workloads`: model -> its
    workload (a user's prompts); otherwise each model's from its held-out windows (`workload`).
    `user_model`: the reference and the artifacts come from a user's files: every worker opens them in
    the OS sandbox (pipeline/sandbox.py), reading them and writing the cache only."""
    if not ts:
        return []
    cache.mkdir(parents=True, exist_ok=True)
    loads = {}
    for model in dict.fromkeys(t.export.model for t in ts):
        w = (workloads or {}).get(model) or workload([t for t in ts if t.export.model == model], g)
        sha = _workload_sha(w)
        f = cache / "workloads" / f"{sha}.npz"
        if not f.exists():
            fsutil.write_with(f, lambda tmp: w.save(tmp))
        loads[model] = (w, sha, f)
    box = _sandbox(ts, cache) if user_model else None
    refs = _references(ts, loads, cache, log, box)
    profs = [profiles.get(p) for p in cfg.profiles]
    records, todo = _plan(ts, profs, loads, refs, cache, g)
    _measure(todo, cache, records, g, log, box)
    out = [records[(ti, p.name)] for ti in range(len(ts)) for p in profs]
    _judge(ts, profs, out)
    if device:
        from pipeline.generative import device as device_mod
        items = [(t, loads[t.export.model][2], refs[(t.export.model, t.reference["path"])][1]) for t in ts]
        out += device_mod.run([i for i in items if isinstance(i[2], Path)], cache / "device", log=log)
    return out


def _plan(ts, profs, loads, refs, cache: Path, g: GenConfig) -> tuple[dict, dict]:
    """-> ((target index, profile) -> the record known without measuring: cached, skipped or failed for
    want of a reference; (runtime, memory ceiling) -> the worker items of what must be measured). Records
    are kept by target index: two targets may share one file."""
    code, records, todo = fsutil.source_hash(CODE), {}, {}
    versions = _versions("executorch", "ai-edge-litert", "onnxruntime")
    for ti, t in enumerate(ts):
        w, wsha, wfile = loads[t.export.model]
        rkey, rfile = refs[(t.export.model, t.reference["path"])]
        adapter = runtimes.get(t.runtime)
        bound = session_class(t.facts.convention).prefill_bound(t.facts)
        for k, prof in enumerate(profs):
            base, full = _base(t, prof), k == 0      # the parity set on the first profile only
            key = fsutil.sha256_text(t.export.artifact_sha256, t.runtime, repr(prof), wsha, str(rkey), str(full),
                                     repr(g), code, versions)
            if not isinstance(rfile, Path):     # the reference failed (its error): nothing to compare with
                records[(ti, prof.name)] = Record(status="failed", error=rfile, **base)
            elif not adapter.available():
                records[(ti, prof.name)] = Record(status="skipped", error=f"runtime {t.runtime} is not installed: "
                                                  f"{adapter.INSTALL_HINT}", **base)
            elif (hit := read_record_file(cache / f"{key}.json")) is not None:
                records[(ti, prof.name)] = hit
            else:
                lengths = [n for n in w.probe_lengths if n in (1, bound, bound + 1)]
                item = {"kind": "artifact", "artifact": str(t.artifact), "facts": t.export.info["generation"],
                        "threads": prof.threads, "cpus": list(prof.cpus), "mem_limit_mb": prof.mem_limit_mb,
                        "workload": str(wfile), "teacher": str(rfile), "full": full, "probe_lengths": lengths,
                        "_target": t, "_ti": ti, "_prof": prof, "_key": key, "_ref": rfile}
                probes = [{**item, "kind": "probe", "probe": p} for p in generate.probes(t.facts.context, lengths)]
                todo.setdefault((t.runtime, prof.mem_limit_mb), []).append([item, *(probes if full else [])])
    return records, todo


def _sandbox(ts: list[Target], cache: Path):
    from pipeline import sandbox
    return sandbox.Sandbox(reads=tuple({str(t.artifact) for t in ts} | {t.reference["path"] for t in ts}),
                           writes=(cache,))


def _measure(todo: dict, cache: Path, records: dict, g: GenConfig, log, box=None) -> None:
    """One worker per runtime and memory ceiling (a ceiling is the process's RLIMIT_AS, which it cannot
    lift again), its measurements in turn, each one item and then its bound probes, one item each; a
    measurement's record is made, cached and logged as soon as its last item is in."""
    with tempfile.TemporaryDirectory(prefix=".tmp-gen-", dir=cache) as tmp:   # in the cache: a sandbox writes it
        n = 0
        for (rt, _), groups in todo.items():
            log(f"[generate] {rt}: {len(groups)} measurement(s) in one worker")
            group_of, results = {}, {}
            for gi, group in enumerate(groups):
                for it in group:
                    n += 1
                    it["id"], it["outputs"] = n, str(Path(tmp) / f"out{n}.npz")
                    group_of[n] = gi

            def keep(i, result, groups=groups, group_of=group_of, results=results):
                group = groups[group_of[i]]
                results[i] = result
                if any(it["id"] not in results for it in group):
                    return
                rec = _record(group, [results[it["id"]] for it in group])
                it = group[0]
                fsutil.write_atomic(cache / f"{it['_key']}.json", rec.to_json())
                records[(it["_ti"], it["_prof"].name)] = rec
                log(f"[generate] {ArtifactId.of(rec).label} {rec.runtime} {rec.profile}: " + (
                    f"TTFT {rec.metrics['ttft_ms']:.2f} ms, decode {rec.metrics['decode_tokens_per_s']:.0f} tok/s"
                    if rec.status == "ok" else f"{rec.status}: {rec.error}"))
            jobs = tuple({k: v for k, v in it.items() if not k.startswith("_")} for group in groups for it in group)
            workers.run(workers.Job("pipeline.generative.worker", jobs, python=runtimes.get(rt).python(),
                                    timeout_s=g.timeout_s, after_death="resume", sandbox=box), on_result=keep)


def _references(ts, loads, cache: Path, log, box=None) -> dict:
    """(model, reference path) -> (its key, the .npz of its outputs, or the one-line error)."""
    out, todo = {}, []
    for t in ts:
        k = (t.export.model, t.reference["path"])
        if k in out:
            continue
        _, wsha, wfile = loads[t.export.model]
        key = fsutil.sha256_text(fsutil.sha256_file(Path(t.reference["path"])), t.reference["kind"],
                                 t.reference.get("model", ""), wsha,
                                 fsutil.source_hash(REFERENCE_CODE), _versions("torch", "transformers"))
        f = cache / "reference" / f"{key}.npz"
        out[k] = (key, f)
        if not f.exists():
            todo.append({"id": len(todo), "kind": "reference", "reference": t.reference, "workload": str(wfile),
                         "outputs": str(f), "threads": 1, "cpus": [], "mem_limit_mb": profiles.default_ceiling_mb()})
    if todo:
        f.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        res = workers.run(workers.Job("pipeline.generative.worker", tuple(todo), timeout_s=1800.0, sandbox=box))
        log(f"[generate] {len(todo)} reference(s) computed in {time.perf_counter() - t0:.1f}s")
        for item in todo:
            if res[item["id"]]["status"] != "ok":
                k = next(k for k, (_, f) in out.items() if str(f) == item["outputs"])
                out[k] = (out[k][0], f"reference {item['reference']['path']}: {res[item['id']]['error']}")
    return out


def _record(group: list[dict], results: list[dict]) -> Record:
    """A measurement's record from its worker results: the measurement, then its bound probes (a probe
    whose worker died keeps the death as its error: `crashed`)."""
    it, result = group[0], results[0]
    t, prof = it["_target"], it["_prof"]
    base = _base(t, prof)
    if result["status"] != "ok":
        return Record(status="failed", error=first_line(result["error"]), metrics=result.get("metrics", {}), **base)
    metrics = {**result["metrics"], "size_bytes": float(fsutil.size_bytes(t.artifact)),
               "size_zipped_bytes": float(fsutil.zipped_size(t.artifact))}
    info = {**result["info"], **base.pop("info")}
    with np.load(it["outputs"]) as z:
        art = {k: z[k] for k in z.files}
    with np.load(it["_ref"]) as z:
        ref = {k: z[k] for k in z.files}
    if it["full"]:
        m, pinfo = compare.parity(art, ref)
        metrics.update(m)
        info.update(pinfo)
        found = []
        for p_it, p_res in zip(group[1:], results[1:]):
            if p_res["status"] != "ok":      # the worker died on it ("death"), or the item raised
                found.append({**p_it["probe"], "ran": False, "died": "death" in p_res,
                              "error": first_line(p_res["error"])})
                continue
            with np.load(p_it["outputs"]) as z:
                found.append({**p_res["probe"], "logits": z["logits"]})
        info["probes"] = compare.probes(found, ref, session_class(t.facts.convention).prefill_bound(t.facts),
                                        t.facts.context)
    return Record(status="ok", metrics=metrics, info=json.loads(json.dumps(info, default=_plain)), **base)


def _plain(o):
    return o.item() if hasattr(o, "item") else str(o)


def _judge(ts: list[Target], profs, recs: list[Record]) -> None:
    """The parity verdict (parity.GENERATIVE) and each bound probe's outcome (parity.judge_bound), from the
    first profile's parity set, on every profile of the artifact: judged here, not stored, so a changed
    bound applies without measuring again."""
    for i, t in enumerate(ts):
        group = recs[i * len(profs):(i + 1) * len(profs)]
        judged, q = group[0], t.export.quantization
        if judged.status not in ("ok", "mismatch") or "sqnr_db" not in judged.metrics:
            continue
        for p in judged.info.get("probes", []):
            p["outcome"] = parity.judge_bound(p["within"], p["ran"], p.get("sqnr_db"), q,
                                              judged.metrics.get("logits_sqnr_db_min"), p.get("died", False))
        v = parity.judge(judged.metrics, q, parity.for_generation(q))
        for r in group:
            if r.status in ("ok", "mismatch"):
                r.status, r.error = v.status, v.reason


def config_with(**overrides) -> GenConfig:
    return dataclasses.replace(GenConfig(), **{k: v for k, v in overrides.items() if v is not None})
