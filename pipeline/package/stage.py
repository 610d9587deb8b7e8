"""`python -m pipeline package SRC --samples S.npz`: the user's model -> verified, benchmarked bundle.

    load + check inputs -> every matching export path (registry) -> parity of every artifact in every
    runtime (verify.py, judged by pipeline/parity.py) -> bench (pipeline/bench/harness.py) -> choice per
    platform (choose.py) -> DIR/<name>/ written atomically (bundle.py) with manifest.json (manifest.py) and
    report.html (page.py, through the report's renderer);
    the candidates also run on a ladder of released runtime versions (pipeline/compat/package.py)

Work (artifacts, sidecars, bench cache) lives in `<artifacts>/package/<name>/`, keyed by content
hashes: a re-run after Ctrl-C or with the same inputs redoes only what is missing or stale.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil, parity, runlog
from pipeline.artifact import resolve
from pipeline.bench import harness, profiles
from pipeline.compat import package as compat_package
from pipeline.explain import evidence, filefacts, rules
from pipeline.package import bundle, choose, exports, manifest, page, reference, sources, verify
from pipeline.package.sources import BadInput
from pipeline.schema import Record

VERIFY_CODE = [Path(verify.__file__), Path(parity.__file__), Path(__file__).parent.parent / "bench" / "stats.py",
               Path(__file__).parent.parent / "explain" / "evidence.py"]


@dataclass(frozen=True)
class Options:
    source: str
    out: Path = Path("dist")
    name: str = ""
    samples: Path | None = None
    calib: Path | None = None
    eval: Path | None = None
    labels: Path | None = None
    prefer: str = "balanced"
    signature: str = "serving_default"
    paths: tuple[str, ...] = ()
    tolerances: tuple[str, ...] = ()
    prompts: Path | None = None          # a language model's prompts, one per line (package/lm.py)
    context: int = 0                     # a language model's cache length (0: lm.DEFAULT_CONTEXT, at most its own)
    bench: profiles.BenchConfig = profiles.BenchConfig(op_profile=False, peer=False)
    work_root: Path = Path("artifacts") / "package"
    command: str = ""
    ladder: str = "default"      # runtime-version ladder of the candidates (pipeline/compat; "none" = off)


def run(o: Options, log=print) -> int:
    if o.prefer not in choose.PREFER:
        raise BadInput(f"--prefer {o.prefer!r}: expected one of {', '.join(choose.PREFER)}")
    src = sources.detect(o.source, o.signature)
    if src.kind == "hf_lm":                   # a language model folder: its own flow
        from pipeline.package import lm
        return lm.run(o, src, log)
    name = o.name or src.stem
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise BadInput(f"--name {name!r}: use letters, digits, '_', '-' and '.' only")
    thresholds = parity.with_overrides(parity.DEFAULTS, list(o.tolerances))
    if o.labels is not None and not o.labels.is_file():
        raise BadInput(f"{o.labels}: no such file (--labels)")
    if sources.framework_of(src):
        _paths(o, sources.framework_of(src))    # a --paths that takes no such model: said before any work
    bundle.check_out(o.out)
    work = o.work_root / name
    # the scratch folder is every worker's TMPDIR (Core AI compiles each loaded model to a temp .aimodelx):
    # a killed run leaves it inside `work`, removed by the next run's lock
    with fsutil.run_lock(work, "package"), fsutil.scratch(work):
        bundle.clean_stale(o.out, name)
        # the model is opened only in a sandboxed worker: pre-checks, samples against its inputs, references
        prep = reference.prepare(src, o.samples, o.calib, o.eval, work)
        return _package(_start(o, src, prep, name, work, thresholds, log), log)


def _paths(o: Options, fw: str) -> list:
    paths = exports.matching_paths(fw, list(o.paths))
    if not paths:
        raise BadInput(f"--paths {','.join(o.paths)}: none of them takes a {fw} model")
    return paths


@dataclass(frozen=True)
class Run:
    """What every step of one package run shares: the options, the source and what the reference worker
    prepared from it, the bundle's name, the work folder, the parity bounds and the export paths."""
    o: Options
    src: sources.Source
    prep: reference.Prepared
    name: str
    work: Path
    thresholds: dict
    paths: tuple
    notes: tuple[str, ...]
    source_sha: str                 # the user's file, hashed once
    refs_key: str                   # the reference outputs' content

    @property
    def inputs(self) -> Path:
        return self.work / "inputs"

    @property
    def profile(self) -> str:
        """The profile the choice compares (the first one asked for)."""
        return self.o.bench.profiles[0]


def _package(run: Run, log) -> int:
    """export -> verify -> version ladder -> bench -> choose -> bundle, each step a function of the last's result."""
    o, name = run.o, run.name
    cands = _export(run, log)
    if not any(c.artifact for c in cands):
        for c in cands:
            log(f"[package] {c.name}: {c.export.status}: {c.export.error}")
        return _nothing_shipped(run, cands, [], f"no export path could export {run.src.text}; each path's error is "
                                "above and in", log)
    cands = _verify(run, cands, log)
    ladder_recs = compat_package.run(cands, run.inputs / "samples.npz", run.prep.refs,
                                     run.prep.samples_sha + run.refs_key, run.thresholds, o.ladder,
                                     run.work / "compat-cache", log)
    cands = _bench(run, cands, log)
    choices = [choose.pick(cands, p, o.prefer, run.profile) for p in choose.PLATFORMS]
    for ch in choices:
        log(f"[package] {ch.platform}: {ch.reason}")
    if not any(ch.candidate for ch in choices):
        return _nothing_shipped(run, cands, choices, "no artifact passed parity for any platform; see", log)
    files, texts = _contents(run, cands, choices, ladder_recs)
    dest = bundle.write(o.out, name, files, texts)
    log(f"[package] wrote {dest}: " + ", ".join(f"{ch.platform}/{name}.{ch.candidate.export.format} "
                                             f"({ch.candidate.name})" for ch in choices if ch.candidate))
    return 0


def _start(o, src, prep, name, work, thresholds, log) -> Run:
    """The run's shared facts; says what is packaged (and warns when there is nothing real to calibrate on)."""
    paths = tuple(_paths(o, prep.framework))
    notes = ()
    if prep.calibration == "random":
        warn = (f"no --samples: calibrating and checking parity on {prep.n_samples} seeded standard-normal samples; "
                "int8 artifacts calibrated on noise may be far off on real data (manifest: calibration \"random\")")
        log(f"warning: {warn}")
        notes = (warn,)
    log(f"[package] {src.text}: {src.kind} ({prep.framework}), inputs "
        + ", ".join(f"{i.name} {list(i.shape)} {i.dtype}" for i in prep.inputs)
        + f"; {prep.n_samples} samples; {len(paths)} export paths")
    return Run(o, src, prep, name, work, thresholds, paths, notes, source_sha=src.sha256(),
               refs_key=fsutil.sha256_text(*[r.tobytes() for r in prep.refs + (prep.ref_eval or [])]))


def _export(run: Run, log) -> list[choose.Candidate]:
    """Every matching path through the registry's own functions, in sandboxed workers (cached by content)."""
    src, prep = run.src, run.prep
    model_key = fsutil.sha256_text(run.source_sha, prep.weights_sha, prep.calib_sha,
                                   src.signature if src.kind == "savedmodel" else "")
    weights = run.inputs / "weights.npz" if src.kind == "factory" else None
    recs = exports.run_all(src, prep.framework, run.name, run.o.work_root, run.inputs / "calib.npz", model_key,
                           list(run.paths), log=log, weights=weights)
    return [choose.Candidate(r, resolve(r.artifact) if r.status == "ok" else None) for r in recs]


def _verify(run: Run, cands: list[choose.Candidate], log) -> list[choose.Candidate]:
    """Each candidate's parity in each runtime that reads it; one that runs only elsewhere (Core ML) gets that
    status in each, never ok and never failed."""
    checks: dict[str, dict[str, choose.Check]] = {}
    pairs = []    # (candidate, runtime) to verify
    for c in cands:
        if c.artifact is None:
            continue
        away, why = parity.runs_elsewhere(c.artifact, c.export.format)
        if away:
            checks[c.name] = {rt: choose.Check(away, why) for rt in c.export.info.get("runtimes", [])}
            continue
        pairs += [(c, rt) for rt in c.export.info.get("runtimes", [])]
    for (c, rt), check in zip(pairs, _checks(run, pairs, log)):
        checks.setdefault(c.name, {})[rt] = check
    return [dataclasses.replace(c, checks=checks.get(c.name, {})) for c in cands]


def _bench(run: Run, cands: list[choose.Candidate], log) -> list[choose.Candidate]:
    """The artifacts in the runtimes where they ran (batch 1, as checked), each bench record carrying its
    parity verdict (`_with_check`)."""
    targets = [harness.Target(artifact=c.artifact, format=c.export.format,
                              runtimes=tuple(rt for rt, ch in c.checks.items() if parity.ran(ch.status)),
                              export=c.export, shapes=tuple((1, *sh[1:]) for sh in run.prep.shapes))
               for c in cands if c.artifact]
    recs = harness.run([t for t in targets if t.runtimes], run.o.bench, run.work / "bench-cache", log=log)
    return [dataclasses.replace(c, bench=tuple(_with_check(r, c.checks[r.runtime], r.profile == run.profile)
                                               for r in recs if r.path == c.name)) for c in cands]


def _with_check(r: Record, check: choose.Check, first: bool) -> Record:
    """A new bench record with the parity result of its artifact in its runtime: the figures on the first
    profile's record, and a run that computes something else is `mismatch`, not `ok`."""
    metrics = {**r.metrics, **check.metrics} if first else r.metrics
    if r.status == "ok" and check.status == "mismatch":
        return dataclasses.replace(r, status="mismatch", error=check.error, metrics=metrics,
                                   info={**r.info, **{k: v for k, v in (("evidence", check.evidence),
                                                                        ("file", check.file)) if v}})
    return dataclasses.replace(r, metrics=metrics)


def _unmeasured(c: choose.Candidate) -> list[Record]:
    """A record for each runtime where the candidate could not be measured (it failed to load, or runs only
    elsewhere): the bench records say nothing about those. Its identity is the export record's."""
    e = c.export
    return [Record(kind="bench", model=e.model, source=e.source, path=e.path, format=e.format, runtime=rt,
                   framework=e.framework, quantization=e.quantization, status=ch.status, error=ch.error,
                   artifact=e.artifact, artifact_sha256=e.artifact_sha256)
            for rt, ch in c.checks.items() if ch.status in ("failed", *parity.ELSEWHERE_STATUSES)]


def _nothing_shipped(run: Run, cands, choices, why: str, log) -> int:
    """No bundle: the report (every candidate and its errors) in the work folder, and why, in one line."""
    fsutil.write_atomic(run.work / "report.html", page.html(run.name, cands, choices, run.profile, run.notes))
    log(f"error: {why} {runlog.shown(run.work / 'report.html')}; no bundle written")
    return 1


def _samples_info(run: Run) -> dict:
    o = run.o
    return {"count": run.prep.n_samples, "sha256": run.prep.samples_sha,
            "file": runlog.shown(o.samples) if o.samples else "random (standard normal, seed 0)",
            "calibration_file": runlog.shown(o.calib or o.samples) if (o.calib or o.samples) else ""}


def _manifest(run: Run, ch: choose.Choice, ladder_recs: list[Record], file_name: str) -> dict:
    """The chosen file's manifest.json content (docs/manifest.md)."""
    c, o = ch.candidate, run.o
    return manifest.build(name=run.name, platform=ch.platform, src=run.src, source_sha256=run.source_sha,
                         framework=run.prep.framework, calibration=run.prep.calibration, samples=_samples_info(run),
                         cand=c, runtime=ch.runtime, file_name=file_name,
                         format_facts=manifest.format_facts(c, run.work),
                         thresholds=dataclasses.asdict(run.thresholds[c.export.quantization]),
                         profiles=list(o.bench.profiles), choice_reason=ch.reason, prefer=o.prefer,
                         command=o.command, measured_minimum=compat_package.manifest_entry(
                             [r for r in ladder_recs if r.path == c.name], c.export.format, o.ladder))


def _contents(run: Run, cands, choices, ladder_recs: list[Record]) -> tuple[dict, dict]:
    """The bundle: per platform the chosen file, its manifest (serialized once, here) and README; the records
    and the report at the top."""
    name = run.name
    records = [c.export for c in cands] + [r for c in cands for r in c.bench] + \
        [r for c in cands for r in _unmeasured(c)] + ladder_recs
    files: dict[str, Path] = {}
    texts = {"report.html": page.html(name, cands, choices, run.profile, run.notes),
             "records.jsonl": "".join(r.to_json() + "\n" for r in records)}
    for ch in choices:
        if ch.candidate is None:
            continue
        c, plat = ch.candidate, ch.platform
        fname = f"{name}.{c.export.format}"
        files[f"{plat}/{fname}"] = c.artifact
        man = _manifest(run, ch, ladder_recs, fname)
        if c.export.format == "pte":     # written by the manifest's format facts (gen_oplist)
            texts[f"{plat}/selected_operators.yaml"] = (run.work / "selected_operators.yaml").read_text()
        readme = bundle.readme(plat, man)
        offered = _coreml_offer(cands, name) if plat == "ios" else []
        if offered:
            files.update({f"ios/{entry['file']}": offer.artifact for offer, entry in offered})
            man["unverified_candidates"] = [entry for _, entry in offered]
            readme += bundle.coreml_readme(man["unverified_candidates"])
        texts[f"{plat}/manifest.json"] = json.dumps(man, indent=1, default=str)
        texts[f"{plat}/README.md"] = readme
        if run.o.labels:
            files[f"{plat}/{run.o.labels.name}"] = run.o.labels
    return files, texts


def _coreml_offer(cands, name: str) -> list[tuple[choose.Candidate, dict]]:
    """ios/coreml/: the Core ML candidates (the smallest per format, from `choose.unverified`) beside the
    verified LiteRT/ExecuTorch pick, each with its manifest entry: "not verified on this host", with what
    Linux could check."""
    return [(c, manifest.unverified(c, f"coreml/{name}.{c.name}.{c.export.format}"))
            for c in choose.unverified(cands, "ios")]


def _checks(run: Run, pairs: list, log) -> list[choose.Check]:
    """Parity of each (candidate, runtime) pair (cached by artifact, runtime, inputs, references, code);
    the pairs not cached run together, one worker per runtime (`verify.run_many`)."""
    prep, inputs = run.prep, run.inputs
    has_eval = prep.ref_eval is not None
    inputs_key = prep.samples_sha + prep.eval_sha + run.refs_key
    caches, results = [], []
    for c, rt in pairs:
        key = fsutil.sha256_text(c.export.artifact_sha256, rt, inputs_key, fsutil.source_hash(VERIFY_CODE))
        caches.append(run.work / "verify-cache" / f"{key}.json")
        try:
            results.append(json.loads(caches[-1].read_text()) if caches[-1].exists() else None)
        except ValueError:
            results.append(None)
    todo = [i for i, r in enumerate(results) if r is None]
    raws = verify.run_many([(pairs[i][0].artifact, pairs[i][1]) for i in todo], inputs / "samples.npz",
                           inputs / "eval.npz" if has_eval else None, run.work) if todo else []
    for i, raw in zip(todo, raws):
        results[i] = _measured(run, raw)
        if raw["status"] != "skipped":
            fsutil.write_json_atomic(caches[i], results[i])
    return [_judged(c, rt, res, run.thresholds, log) for (c, rt), res in zip(pairs, results)]


def _measured(run: Run, raw: dict) -> dict:
    """A verify result's figures against the references, bound-free (a --tolerance given next time judges the
    same cached result); where they differ, the evidence of the worst sample."""
    res = {k: v for k, v in raw.items() if k not in ("outputs", "eval_outputs")}
    if raw["status"] != "ok":
        return res
    refs, y = run.prep.refs, run.prep.labels
    with np.load(run.inputs / "samples.npz") as z:
        xs = [z[f"in_{i}"] for i in range(len(z.files))]
    res["metrics"] = parity.compare(raw["outputs"], refs)
    res["evidence"] = evidence.of_worst(raw["outputs"], refs, xs)
    if run.prep.ref_eval is not None and raw.get("eval_outputs"):
        res["metrics"]["accuracy"] = float((raw["eval_outputs"][0].reshape(len(y), -1).argmax(-1) == y).mean())
        res["metrics"]["reference_accuracy"] = float((run.prep.ref_eval[0].reshape(len(y), -1).argmax(-1) == y)
                                                     .mean())
    return res


def _judged(c, rt, res: dict, thresholds, log) -> choose.Check:
    """A measured (or cached) result judged by the policy; a mismatch with what the file computes and the cause
    the rules see in the evidence. Logs the figures judged, each with its bound."""
    check = choose.Check(res["status"], res.get("error", ""), res.get("metrics", {}), res.get("version", ""),
                         res.get("describe") or {}, res.get("evidence"))
    if check.status == "ok":
        v = parity.judge(check.metrics, c.export.quantization, thresholds[c.export.quantization])
        check = dataclasses.replace(check, status=v.status, error=v.reason, figures=v.figures)
    if check.status == "mismatch":
        facts = filefacts.of(c.artifact, c.export.format)
        check = dataclasses.replace(check, file=facts,
                                    cause=rules.explain(check.evidence, facts, c.export.quantization).cause)
    log(f"[package parity] {c.name} on {rt}: {check.status}" + (f", {check.figures}" if check.figures else "")
        + (f": {check.error}" if check.error else "") + (f"; cause: {check.cause}" if check.cause else ""))
    return check
