"""Every registered export path whose input kind matches the user's model, through the registry's own
path functions (`export.run.export_to`, as the operator probes do), in a worker process
(`pipeline/workers.py`):

    records = exports.run_all(src, fw, name, root, calib_npz, model_key, paths, log)   # parent side
    python -m pipeline.package.exports JOB.json                                        # the worker

Each artifact lands at `ArtifactId(name, framework, path).file(root, fmt)` with its sidecar; the cache
key is source sha256 + weights + calibration samples sha256 + the export code the path runs, so a
re-run (after Ctrl-C, or unchanged input) redoes only what is missing or stale. A converter that
crashes natively or hangs costs its own path only (`failed` with the worker's death); a fresh worker
goes on with the rest.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from pipeline import fsutil, progress, workers  # noqa: E402
from pipeline.artifact import ArtifactId, fresh_record, write_sidecar  # noqa: E402
from pipeline.schema import Record, first_line  # noqa: E402

TIMEOUT_S = 3600.0      # no progress line for this long on one path: the converter hangs


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
    return fsutil.sha256_text(model_key, fsutil.source_hash(EXPORT_CODE + registry.code_files(p)), p.name)


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
    results = {}
    if todo:
        params = {"source": {"kind": src.kind, "path": str(src.path.resolve()), "function": src.function,
                             "signature": src.signature},
                  "name": name, "framework": framework, "root": str(root.resolve()), "calib": str(calib_npz.resolve()),
                  "weights": str(weights.resolve()) if weights else ""}
        steps = progress.Progress(len(todo), in_all=False)     # the worker's lines get the count and time left
        results = workers.run(workers.Job("pipeline.package.exports", tuple({"id": p.name, "key": keys[p.name]}
                                                                            for p in todo), params,
                                          timeout_s=TIMEOUT_S, sandbox=_sandbox(params)),
                              on_line=steps.say(log))
    out = []
    for p in paths:
        rec = cached(root, name, framework, p, keys[p.name])
        if rec is None:
            res = results.get(p.name, {})
            rec = Record(kind="export", model=name, source=framework, path=p.name, format=p.format,
                         framework=ArtifactId(name, framework, p.name).framework, quantization=p.quantization,
                         status="failed", error=f"export: {res.get('error', 'the worker wrote no record')}")
        out.append(rec)
    return out


def _sandbox(params: dict):
    """The export worker opens the user's model: it reads the source and the calibration samples and
    writes only this package's work folder (pipeline/sandbox.py)."""
    from pipeline import sandbox
    src = Path(params["source"]["path"])
    reads = [src.parent if params["source"]["kind"] == "factory" else src, params["calib"]] + \
        ([params["weights"]] if params["weights"] else [])
    return sandbox.Sandbox(reads=tuple(reads), writes=(Path(params["root"]) / params["name"],))


def main() -> int:
    """The worker: the user's model is loaded once, for its first path; each path then through the
    registry's own function (`export_to`), its record written beside the artifact."""
    from export import registry
    from export.run import export_to
    from pipeline.package import sources
    from probes import ProbeSpec
    loaded: dict = {}

    def one(item: dict, job: dict, say) -> dict:
        if not loaded:
            s = job["source"]
            loaded["model"] = sources.load(sources.Source(s["kind"], Path(s["path"]), s["function"], s["signature"]))
            if job.get("weights"):
                sources.load_weights(loaded["model"], Path(job["weights"]))
            with np.load(job["calib"]) as z:
                loaded["calib"] = tuple(z[f"in_{i}"] for i in range(len(z.files)))
        root, name, fw, calib = Path(job["root"]), job["name"], job["framework"], loaded["calib"]
        p = registry.get(item["id"])
        aid = ArtifactId(name, fw, p.name)
        work = aid.folder(root) / f".work-{p.name}"
        work.mkdir(parents=True, exist_ok=True)
        # the user's model keeps its own input layout
        ctx = registry.ExportContext(ProbeSpec(name, "same"), fw, loaded["model"].model, tuple(a[:1] for a in calib),
                                     calib, aid.file(root, p.format), work)
        rec = export_to(p, ctx, dict(kind="export", model=name, source=fw, path=p.name, format=p.format,
                                     framework=aid.framework, quantization=p.quantization))
        write_sidecar(root, aid, item["key"], rec)
        msg = f"{rec.metrics.get('size_bytes', 0) / 1024:.1f} KiB" if rec.status == "ok" else first_line(rec.error)
        say(f"[package export] {p.name}: {rec.status} in {rec.metrics.get('export_seconds', 0):.1f}s ({msg})")
        return {"status": rec.status}

    return workers.serve(one, say=True)


if __name__ == "__main__":
    sys.exit(main())
