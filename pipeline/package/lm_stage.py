"""The LM package flow after its inputs are checked (`lm.py`): exports, the generation bench, the choice
per platform, the bundles. A straight line of small steps; each step's work is cached by content.

    lm_stage.run(options, folder, lm, name, work, prompts, gen_config, log)
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline import fsutil
from pipeline.artifact import resolve
from pipeline.package import bundle, choose, lm, lm_exports, lm_manifest
from pipeline.schema import Record


class LMCandidate(choose.Candidate):
    """A generative artifact as a package candidate: its speed is the time per decoded token (the
    median of the decode steps from the second on), what `choose.pick` compares."""

    def p50(self, runtime: str, profile: str) -> float | None:
        for r in self.bench:
            if r.runtime == runtime and r.profile == profile and r.status == "ok":
                return r.metrics.get("decode_ms_per_token")
        return None

    def speed(self, runtime: str, profile: str) -> str:
        r = next(r for r in self.bench if r.runtime == runtime and r.profile == profile)
        return (f"{r.metrics['decode_tokens_per_s']:.0f} tokens/s ({r.metrics['decode_ms_per_token']:.3f} ms per decoded "
                f"token), TTFT {r.metrics['ttft_ms']:.2f} ms on {runtime} {profile}")


def run(o, folder, contract, name: str, work: Path, prompts, g, log) -> int:
    from pipeline.generative import bench as gen_bench
    from pipeline.generative.session import LMFacts
    folder_sha = fsutil.sha256_text(*[f"{f.relative_to(folder.path).as_posix()}:{fsutil.sha256_file(f)}"
                                      for f in folder.files])
    log(f"[package] {folder.path}: {folder.architecture}, vocab {contract.vocab}, {contract.layers} layers, cache of "
        f"{contract.context} positions; {len(prompts.ids)} prompt(s) from {prompts.source}"
        + (f"; ignored (pickles, never opened): {', '.join(folder.ignored)}" if folder.ignored else ""))
    calib = work / "inputs" / "calib.npz"
    fsutil.save_npz(calib, x=lm.calib_windows(prompts, contract))
    exports = lm_exports.run_all(folder.path, contract, name, o.work_root, folder_sha, calib, log=log)
    ok = [r for r in exports if r.status == "ok"]
    if not ok:
        for r in exports:
            log(f"[package] {r.path}: {r.status}: {r.error}")
        log(f"error: no generative export path could export {folder.path}; no bundle written")
        return 1
    ref = {"kind": "hf", "path": str(folder.path.resolve())}
    targets = [gen_bench.Target(resolve(r.artifact), r, LMFacts.of(r.info), ref, Path()) for r in ok]
    w = lm.workload(targets, g, prompts)
    recs = gen_bench.run(targets, o.bench, work / "generate-cache", g, workloads={name: w}, user_model=True, log=log)
    first = o.bench.profiles[0]
    cands = []
    for e in exports:
        mine = tuple(r for r in recs if r.path == e.path)
        checks = {r.runtime: choose.Check(r.status, r.error, r.metrics, r.info.get("runtime_version", ""))
                  for r in mine if r.profile == first}
        cands.append(LMCandidate(e, resolve(e.artifact) if e.status == "ok" else None, checks, mine))
    choices = [choose.pick(cands, p, o.prefer, first) for p in choose.PLATFORMS]
    for ch in choices:
        log(f"[package] {ch.platform}: {ch.reason}")
    report_md = _report(exports + recs)
    texts = {"report.md": report_md, "records.jsonl": "".join(r.to_json() + "\n" for r in exports + recs)}
    if not any(ch.candidate for ch in choices):
        fsutil.write_atomic(work / "report.md", report_md)
        log(f"error: no generative artifact passed parity for any platform; see {work / 'report.md'}; no bundle written")
        return 1
    files = {}
    samples = {"file": prompts.source, "sha256": prompts.sha256, "prompts": len(prompts.ids),
               "measured": min(len(prompts.ids), lm.TIMED_PROMPTS), "heldout_tokens": int(w.heldout.size)}
    for ch in choices:
        if ch.candidate is None:
            continue
        c, plat = ch.candidate, ch.platform
        fname = f"{name}.{c.export.format}"
        files[f"{plat}/{fname}"] = c.artifact
        for tok in ("tokenizer.json", "tokenizer_config.json"):
            if (folder.path / tok).is_file():
                files[f"{plat}/{tok}"] = folder.path / tok
        facts = lm_manifest.format_facts(c, work)
        if c.export.format == "pte":
            texts[f"{plat}/selected_operators.yaml"] = (work / "selected_operators.yaml").read_text()
        man = lm_manifest.build(name=name, platform=plat, folder=folder, folder_sha=folder_sha, contract=contract,
                                cand=c, runtime=ch.runtime, file_name=fname, format_facts=facts, samples=samples,
                                profiles=list(o.bench.profiles), choice_reason=ch.reason, prefer=o.prefer,
                                command=o.command)
        texts[f"{plat}/manifest.json"] = json.dumps(man, indent=1, default=str)
        texts[f"{plat}/README.md"] = lm_manifest.readme(plat, man)
    dest = bundle.write(o.out, name, files, texts)
    log(f"[package] wrote {dest}: " + ", ".join(f"{ch.platform}/{name}.{ch.candidate.export.format} "
                                             f"({ch.candidate.name})" for ch in choices if ch.candidate))
    return 0


def _report(records: list[Record]) -> str:
    """The candidates as the report's generative section shows them (the same tables as `make report`)."""
    from pipeline.report import generative
    from pipeline.report.view import build
    return "\n".join(generative.section(build(records))) or "(no generative artifact was measured)\n"
