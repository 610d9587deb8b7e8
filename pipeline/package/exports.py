"""Every registered export path whose input kind matches the user's model, through the registry's own
path functions (`export.run.export_to`, as the operator probes do), in one worker process:

    records = exports.run_all(src, loaded, name, root, calib_npz, paths, log)   # parent side
    python -m pipeline.package.exports JOB.json                                # the worker

Each artifact lands at `ArtifactId(name, framework, path).file(root, fmt)` with its sidecar; the cache
key is source sha256 + weights + calibration samples sha256 + the export code the path runs, so a
re-run (after Ctrl-C, or unchanged input) redoes only what is missing or stale. A converter that
crashes natively kills the worker only: the paths it had not finished are `failed` with its exit code.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from pipeline import fsutil, procutil, progress, runlog  # noqa: E402
from pipeline.artifact import ArtifactId, fresh_record, write_sidecar  # noqa: E402
from pipeline.schema import Record, first_line  # noqa: E402

TIMEOUT_S = 3600.0


def matching_paths(framework: str, only: list[str] | None = None) -> list:
    """Registered paths that take this framework's model (`only` restricts them by name)."""
    from export import registry
    paths = [p for p in registry.paths_for("classification").values() if p.input_kind == framework]
    if only:
        for n in only:
            registry.get(n)   # unknown names fail here, listing the valid ones
        paths = [p for p in paths if p.name in only]
    return paths


def path_key(model_key: str, p) -> str:
    from export import registry
    from export.run import EXPORT_CODE
    return fsutil.sha256_text(model_key, registry.code_key(p, *EXPORT_CODE), p.name)


def cached(root: Path, name: str, framework: str, p, key: str) -> Record | None:
    return fresh_record(root, ArtifactId(name, framework, p.name), key)


def run_all(src, framework: str, name: str, root: Path, calib_npz: Path, model_key: str, paths: list,
            log=print, weights: Path | None = None) -> list[Record]:
    """`weights`: the parent's weights to load into the worker's model (a factory source)."""
    keys = {p.name: path_key(model_key, p) for p in paths}
    todo = [p for p in paths if cached(root, name, framework, p, keys[p.name]) is None]
    for p in paths:
        if p not in todo:
            log(f"[package export] {p.name}: up to date")
    rc, tail = 0, ""
    if todo:
        job = {"source": {"kind": src.kind, "path": str(src.path.resolve()), "function": src.function,
                          "signature": src.signature},
               "name": name, "framework": framework, "root": str(root.resolve()), "calib": str(calib_npz.resolve()),
               "weights": str(weights.resolve()) if weights else "",
               "items": [{"path": p.name, "key": keys[p.name]} for p in todo]}
        rc, tail = _run_worker(job, log)
    out = []
    for p in paths:
        rec = cached(root, name, framework, p, keys[p.name])
        if rec is None:
            aid = ArtifactId(name, framework, p.name)
            rec = Record(kind="export", model=name, source=framework, path=p.name, format=p.format,
                         framework=aid.framework, quantization=p.quantization, status="failed",
                         error=f"export worker exited with code {rc} before this path finished"
                               + (f"; last output: {tail}" if tail else ""))
        out.append(rec)
    return out


def _sandbox(job: dict):
    """The export worker opens the user's model: it reads the source and the calibration samples and
    writes only this package's work folder (pipeline/sandbox.py)."""
    from pipeline import sandbox
    sandbox.require()
    src = Path(job["source"]["path"])
    reads = [src.parent if job["source"]["kind"] == "factory" else src, job["calib"]] + \
        ([job["weights"]] if job["weights"] else [])
    return sandbox.Sandbox(reads=tuple(reads), writes=(Path(job["root"]) / job["name"],))


def _run_worker(job: dict, log) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="mb-package-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **procutil.child_env()}
        cmd = [sys.executable, "-m", "pipeline.package.exports", str(job_file)]
        box = _sandbox(job)
        cmd, env = box.wrap(cmd, Path(tmp)), box.env(env, Path(tmp))
        proc = subprocess.Popen(cmd, cwd=fsutil.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        # the worker's lines carry the count; the time left is added here
        steps = progress.Progress(len(job["items"]), count=False)
        try:
            tail = runlog.relay(proc.stdout, lambda line: log(steps.tag(line)),
                                lambda line: line.startswith("[package export"), "package.exports")
            proc.wait(timeout=TIMEOUT_S)
        except BaseException:
            procutil.kill_group(proc.pid)   # Ctrl-C: the worker is in its own session; finished paths are kept
            proc.wait()
            raise
        return proc.returncode, tail


def main() -> int:
    procutil.die_with_parent()
    job = json.loads(Path(sys.argv[1]).read_text())
    from export import registry
    from export.run import export_to
    from pipeline.package import sources
    from probes import ProbeSpec

    s = job["source"]
    src = sources.Source(s["kind"], Path(s["path"]), s["function"], s["signature"])
    loaded = sources.load(src)
    if job.get("weights"):
        sources.load_weights(loaded, Path(job["weights"]))
    with np.load(job["calib"]) as z:
        calib = tuple(z[f"in_{i}"] for i in range(len(z.files)))
    root, name, fw = Path(job["root"]), job["name"], job["framework"]
    spec = ProbeSpec(name, "same")    # the user's model keeps its own input layout
    for i, item in enumerate(job["items"], 1):
        p = registry.get(item["path"])
        aid = ArtifactId(name, fw, p.name)
        art = aid.file(root, p.format)
        work = aid.folder(root) / f".work-{p.name}"
        work.mkdir(parents=True, exist_ok=True)
        ctx = registry.ExportContext(spec, fw, loaded.model, tuple(a[:1] for a in calib), calib, art, work)
        base = dict(kind="export", model=name, source=fw, path=p.name, format=p.format,
                    framework=aid.framework, quantization=p.quantization)
        rec = export_to(p, ctx, base)
        write_sidecar(root, aid, item["key"], rec)
        msg = f"{rec.metrics.get('size_bytes', 0) / 1024:.1f} KiB" if rec.status == "ok" else first_line(rec.error)
        print(f"[package export {i}/{len(job['items'])}] {p.name}: {rec.status} in "
              f"{rec.metrics.get('export_seconds', 0):.1f}s ({msg})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
