"""`python -m pipeline package SRC --samples S.npz`: the user's model -> verified, benchmarked bundle.

    load + check inputs -> every matching export path (registry) -> parity of every artifact in every
    runtime (verify.py, judged by pipeline/parity.py) -> bench (pipeline/bench/harness.py) -> choice per
    platform (choose.py) -> DIR/<name>/ written atomically (bundle.py) with manifest.json (manifest.py);
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

from pipeline import fsutil, parity
from pipeline.artifact import resolve
from pipeline.bench import harness, profiles
from pipeline.compat import package as compat_package
from pipeline.explain import evidence, filefacts, rules
from pipeline.package import bundle, choose, exports, manifest, reference, sources, verify
from pipeline.package.sources import BadInput
from pipeline.schema import Record


def verify_code_key(runtime: str) -> str:
    """What a cached parity result depends on: the verify worker, the runtime's adapter, parity.compare
    and this module (accuracy is computed here), every project module they import and the versions of
    the libraries they import, as installed for the adapter's interpreter (`deps.key`)."""
    from pipeline import deps, runtimes
    return deps.key([Path(verify.__file__), Path(parity.__file__), Path(__file__), runtimes.module_file(runtime)],
                    python=runtimes.get(runtime).python())


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
    bench: profiles.BenchConfig = profiles.BenchConfig(op_profile=False, peer=False)
    work_root: Path = Path("artifacts") / "package"
    command: str = ""
    ladder: str = "default"      # runtime-version ladder of the candidates (pipeline/compat; "none" = off)


def run(o: Options, log=print) -> int:
    if o.prefer not in choose.PREFER:
        raise BadInput(f"--prefer {o.prefer!r}: expected one of {', '.join(choose.PREFER)}")
    src = sources.detect(o.source, o.signature)
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
        return _run_locked(o, src, prep, name, work, thresholds, log)


def _paths(o: Options, fw: str) -> list:
    paths = exports.matching_paths(fw, list(o.paths))
    if not paths:
        raise BadInput(f"--paths {','.join(o.paths)}: none of them takes a {fw} model")
    return paths


def _run_locked(o, src, prep, name, work, thresholds, log) -> int:
    fw = prep.framework
    paths = _paths(o, fw)
    notes = []
    if prep.calibration == "random":
        warn = (f"no --samples: calibrating and checking parity on {prep.n_samples} seeded standard-normal samples; "
                "int8 artifacts calibrated on noise may be far off on real data (manifest: calibration \"random\")")
        log(f"warning: {warn}")
        notes.append(warn)
    inputs_dir = work / "inputs"
    samples_sha, calib_sha, eval_sha, calibration = prep.samples_sha, prep.calib_sha, prep.eval_sha, prep.calibration
    source_sha = src.sha256()
    model_key = fsutil.sha256_text(source_sha, prep.weights_sha, calib_sha,
                                   src.signature if src.kind == "savedmodel" else "")
    log(f"[package] {src.text}: {src.kind} ({fw}), inputs "
        + ", ".join(f"{i.name} {list(i.shape)} {i.dtype}" for i in prep.inputs)
        + f"; {prep.n_samples} samples; {len(paths)} export paths")
    refs, ref_eval, y = prep.refs, prep.ref_eval, prep.labels

    weights = inputs_dir / "weights.npz" if src.kind == "factory" else None
    recs = exports.run_all(src, fw, name, o.work_root, inputs_dir / "calib.npz", model_key, paths, log=log,
                           weights=weights)
    cands = [choose.Candidate(r, resolve(r.artifact) if r.status == "ok" else None) for r in recs]
    if not any(c.artifact for c in cands):
        for r in recs:
            log(f"[package] {r.path}: {r.status}: {r.error}")
        fsutil.write_atomic(work / "report.html", bundle.report_html(name, cands, [], "", notes))
        log(f"error: no export path could export {src.text}; each path's error is above and in "
            f"{work / 'report.html'}; no bundle written")
        return 1

    ref_sha = fsutil.sha256_text(*[r.tobytes() for r in refs + (ref_eval or [])],
                                 y.tobytes() if y is not None else b"")   # the eval labels score accuracy
    pairs = []    # (candidate, runtime) to verify
    for c in cands:
        if c.artifact is None:
            continue
        away, why = parity.runs_elsewhere(c.artifact, c.export.format)
        if away:   # e.g. Core ML: nothing runs it on this host, so nothing is verified (never ok, never failed)
            c.checks = {rt: {"status": away, "error": why} for rt in c.export.info.get("runtimes", [])}
            continue
        pairs += [(c, rt) for rt in c.export.info.get("runtimes", [])]
    for (c, rt), res in zip(pairs, _checks(pairs, work, inputs_dir, ref_eval is not None,
                                           samples_sha + eval_sha + ref_sha, refs, ref_eval, y, thresholds, log)):
        c.checks[rt] = res
    ladder_recs = compat_package.run(cands, inputs_dir / "samples.npz", refs, samples_sha + ref_sha, thresholds,
                                     o.ladder, work / "compat-cache", log)

    cfg = o.bench
    targets = [harness.Target(artifact=c.artifact, format=c.export.format,
                              runtimes=tuple(rt for rt, ch in c.checks.items() if parity.ran(ch["status"])),
                              export=c.export, shapes=tuple((1, *sh[1:]) for sh in prep.shapes))   # batch 1, as checked
               for c in cands if c.artifact]
    bench_recs = harness.run([t for t in targets if t.runtimes], cfg, work / "bench-cache", log=log)
    by_path = {c.name: c for c in cands}
    first = cfg.profiles[0]
    for r in bench_recs:
        c = by_path[r.path]
        check = c.checks[r.runtime]
        if r.profile == first:
            r.metrics.update(check.get("metrics", {}))
        if r.status == "ok" and check["status"] == "mismatch":
            r.status, r.error = "mismatch", check["error"]
            r.info.update({k: check[k] for k in ("evidence", "file") if check.get(k)})
        c.bench.append(r)

    choices = [choose.pick(cands, p, o.prefer, first) for p in choose.PLATFORMS]
    for ch in choices:
        log(f"[package] {ch.platform}: {ch.reason}")
    html = bundle.report_html(name, cands, choices, first, notes)
    if not any(ch.candidate for ch in choices):
        fsutil.write_atomic(work / "report.html", html)
        log(f"error: no artifact passed parity for any platform; see {work / 'report.html'}; no bundle written")
        return 1

    files, texts = {}, {"report.html": html}
    all_records = [c.export for c in cands] + [r for c in cands for r in c.bench] + [
        Record(kind="bench", model=name, source=fw, path=c.name, format=c.export.format, runtime=rt,
               framework=c.export.framework, quantization=c.export.quantization, status=ch["status"],
               error=ch["error"], artifact=c.export.artifact, artifact_sha256=c.export.artifact_sha256)
        for c in cands for rt, ch in c.checks.items() if ch["status"] in ("failed", *parity.ELSEWHERE_STATUSES)]
    texts["records.jsonl"] = "".join(r.to_json() + "\n" for r in all_records + ladder_recs)
    samples_info = {"count": prep.n_samples, "sha256": samples_sha,
                    "file": str(o.samples) if o.samples else "random (standard normal, seed 0)",
                    "calibration_file": str(o.calib or o.samples or "")}
    for ch in choices:
        if ch.candidate is None:
            continue
        c, plat = ch.candidate, ch.platform
        fname = f"{name}.{c.export.format}"
        files[f"{plat}/{fname}"] = c.artifact
        facts = manifest.format_facts(c, work)
        if c.export.format == "pte":
            texts[f"{plat}/selected_operators.yaml"] = (work / "selected_operators.yaml").read_text()
        man = manifest.build(name=name, platform=plat, src=src, source_sha256=source_sha, framework=fw,
                             calibration=calibration, samples=samples_info, cand=c, runtime=ch.runtime,
                             file_name=fname, format_facts=facts,
                             thresholds=dataclasses.asdict(thresholds[c.export.quantization]),
                             profiles=list(cfg.profiles), choice_reason=ch.reason, prefer=o.prefer, command=o.command,
                             measured_minimum=compat_package.manifest_entry(
                                 [r for r in ladder_recs if r.path == c.name], c.export.format, o.ladder))
        texts[f"{plat}/manifest.json"] = json.dumps(man, indent=1, default=str)
        texts[f"{plat}/README.md"] = bundle.readme(plat, man)
        if o.labels:
            files[f"{plat}/{o.labels.name}"] = o.labels
    _offer_coreml(cands, name, files, texts)
    dest = bundle.write(o.out, name, files, texts)
    log(f"[package] wrote {dest}: " + ", ".join(f"{ch.platform}/{name}.{ch.candidate.export.format} "
                                             f"({ch.candidate.name})" for ch in choices if ch.candidate))
    return 0


def _offer_coreml(cands, name: str, files: dict, texts: dict) -> None:
    """ios/coreml/: the Core ML candidates (the smallest per format, from `choose.unverified`) beside the
    verified LiteRT/ExecuTorch pick, marked "not verified on this host" with what Linux could check."""
    offered = choose.unverified(cands, "ios")
    if not offered or "ios/manifest.json" not in texts:
        return
    man = json.loads(texts["ios/manifest.json"])
    man["unverified_candidates"] = []
    for c in offered:
        fname = f"coreml/{name}.{c.name}.{c.export.format}"
        files[f"ios/{fname}"] = c.artifact
        man["unverified_candidates"].append(manifest.unverified(c, fname))
    texts["ios/manifest.json"] = json.dumps(man, indent=1, default=str)
    texts["ios/README.md"] += bundle.coreml_readme(man["unverified_candidates"])


def _checks(pairs, work, inputs_dir, has_eval, inputs_key, refs, ref_eval, y, thresholds, log) -> list[dict]:
    """Parity of each (candidate, runtime) pair (cached by artifact, runtime, inputs, references, code);
    the pairs not cached run together, one worker per runtime (`verify.run_many`)."""
    caches, results = [], []
    for c, rt in pairs:
        key = fsutil.sha256_text(c.export.artifact_sha256, rt, inputs_key, verify_code_key(rt))
        caches.append(work / "verify-cache" / f"{key}.json")
        try:
            results.append(json.loads(caches[-1].read_text()) if caches[-1].exists() else None)
        except ValueError:
            results.append(None)
    todo = [i for i, r in enumerate(results) if r is None]
    with np.load(inputs_dir / "samples.npz") as z:
        xs = [z[f"in_{i}"] for i in range(len(z.files))]
    raws = verify.run_many([(pairs[i][0].artifact, pairs[i][1]) for i in todo], inputs_dir / "samples.npz",
                           inputs_dir / "eval.npz" if has_eval else None, work) if todo else []
    for i, raw in zip(todo, raws):
        res = {k: v for k, v in raw.items() if k not in ("outputs", "eval_outputs")}
        if raw["status"] == "ok":
            res["metrics"] = parity.compare(raw["outputs"], refs)
            # where they differ, bound-free (a --tolerance given next time judges the same cached result)
            res["evidence"] = evidence.of_worst(raw["outputs"], refs, xs)
            if has_eval and raw.get("eval_outputs"):
                res["metrics"]["accuracy"] = float((raw["eval_outputs"][0].reshape(len(y), -1).argmax(-1) == y).mean())
                res["metrics"]["reference_accuracy"] = float((ref_eval[0].reshape(len(y), -1).argmax(-1) == y).mean())
        if raw["status"] != "skipped":
            fsutil.write_json_atomic(caches[i], res)
        results[i] = res
    return [_judged(c, rt, res, thresholds, log) for (c, rt), res in zip(pairs, results)]


def _judged(c, rt, res: dict, thresholds, log) -> dict:
    figures = ""
    if res["status"] == "ok":
        v = parity.judge(res["metrics"], c.export.quantization, thresholds[c.export.quantization])
        res, figures = {**res, "status": v.status, "error": v.reason}, v.figures
    if res["status"] == "mismatch":   # what the file computes, and the cause the rules see in the evidence
        res["file"] = filefacts.of(c.artifact, c.export.format)
        res["cause"] = rules.explain(res.get("evidence"), res["file"], c.export.quantization).cause
    # the figures judged, each with its bound (the decisive samples' top-1, not the raw one)
    log(f"[package parity] {c.name} on {rt}: {res['status']}" + (f", {figures}" if figures else "")
        + (f": {res['error']}" if res.get("error") else "")
        + (f"; cause: {res['cause']}" if res.get("cause") else ""))
    return res
