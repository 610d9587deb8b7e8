"""Every generative export path (the registry's, `registry.paths_for("generation")`) on a user's LM folder,
in a worker through the worker protocol, in the OS sandbox (pipeline/sandbox.py: it reads the folder,
writes this package's work folder): a converter that crashes natively costs the path it was in, and a
fresh worker goes on with the rest.

    recs = lm_exports.run_all(folder, lm, name, root, folder_sha, log)     # parent side
    python -m pipeline.package.lm_exports JOB.json                           # the worker

Each artifact lands at `ArtifactId(name, "torch", path).file(root, fmt)` with its sidecar; the cache key is
the folder's content hash + the export contract (`LMConfig`) + the export code the path runs, so a re-run
redoes only what is missing or stale. The PyTorch twin is the folder itself, loaded once per worker from
its safetensors (`reference.load_hf`: no pickle, no remote code); the paths share one `ctx.shared` per
worker (the int8 paths reuse the fp32 conversion), as in the zoo's export.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import fsutil
from pipeline.artifact import ArtifactId, fresh_record, write_sidecar
from pipeline.schema import Record, first_line

TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class UserLM:
    """What a generative path reads of `ctx.spec` for a user's folder: its name and export contract."""
    name: str
    lm: object                      # models.lm_config.LMConfig
    task: str = "generation"


def paths() -> list:
    """The generative paths a user's folder goes through: those that take the PyTorch model (the Keras
    paths need the zoo's Keras twin, which a folder does not have)."""
    from export import registry
    return [p for p in registry.paths_for("generation").values() if p.input_kind == "torch"]


def _key(folder_sha: str, lm, p) -> str:
    from export import registry
    from export.run import EXPORT_CODE
    from pipeline.generative import reference   # loads the folder's model for the paths
    return fsutil.sha256_text(folder_sha, repr(sorted(lm.to_dict().items())), p.name, fsutil.source_hash(
        EXPORT_CODE + registry.code_files(p) + [Path(__file__), Path(reference.__file__)]))


def run_all(folder: Path, lm, name: str, root: Path, folder_sha: str, calib_npz: Path, log=print) -> list[Record]:
    """`calib_npz`: `x` int32 [k, context], token windows of the user's text (what a path that calibrates
    takes; `example` is its first)."""
    from pipeline import workers
    todo, out = [], {}
    calib_sha = fsutil.sha256_file(calib_npz)
    for p in paths():
        key = _key(folder_sha + calib_sha, lm, p)
        hit = fresh_record(root, ArtifactId(name, "torch", p.name), key)
        if hit is not None:
            log(f"[package export] {p.name}: up to date")
            out[p.name] = hit
        else:
            todo.append({"id": p.name, "key": key})
    if todo:
        log(f"[package export] {len(todo)} generative path(s) in one worker: {', '.join(i['id'] for i in todo)}")
        params = {"folder": str(Path(folder).resolve()), "lm": lm.to_dict(), "name": name,
                  "root": str(Path(root).resolve()), "calib": str(Path(calib_npz).resolve())}

        def tell(i, res):
            msg = res.get("error", "") if res["status"] != "ok" else f"{res.get('bytes', 0) / 1024:.1f} KiB"
            log(f"[package export] {i}: {res.get('export_status', res['status'])} ({msg})")
        from pipeline import sandbox
        box = sandbox.Sandbox(reads=(folder, calib_npz), writes=(Path(root) / name,))   # opens the user's folder
        results = workers.run(workers.Job("pipeline.package.lm_exports", tuple(todo), params=params,
                                          timeout_s=TIMEOUT_S, after_death="resume", sandbox=box), on_result=tell)
        for item in todo:
            p = next(q for q in paths() if q.name == item["id"])
            rec = fresh_record(root, ArtifactId(name, "torch", p.name), item["key"])
            out[p.name] = rec or Record(kind="export", model=name, source="torch", path=p.name, format=p.format,
                                        framework="pytorch", quantization=p.quantization, status="failed",
                                        error=first_line(results[item["id"]].get("error", "export worker died")))
    return [out[p.name] for p in paths()]


@dataclass
class _Process:
    """What the worker keeps between its items: the model, and the paths' shared scratch."""
    model: object = None
    shared: dict = field(default_factory=dict)


def _export(item: dict, params: dict, proc: _Process) -> dict:
    import numpy as np

    from export import registry
    from export.run import export_to
    from models.lm_config import LMConfig
    from pipeline.generative.reference import load_hf
    lm = LMConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in params["lm"].items()})
    if proc.model is None:
        from models.lm_hf import transformers
        transformers()     # Hub kernels off before anything imports transformers' models (the exporters need it)
        proc.model = load_hf(params["folder"])
        proc.shared["hf_folder"] = params["folder"]
    root, name = Path(params["root"]), params["name"]
    p = registry.get(item["id"])
    aid = ArtifactId(name, "torch", p.name)
    work = aid.folder(root) / f".work-{p.name}"
    work.mkdir(parents=True, exist_ok=True)
    with np.load(params["calib"]) as z:
        calib = np.asarray(z["x"], np.int32)
    ctx = registry.ExportContext(UserLM(name, lm), "torch", proc.model, calib[:1], calib, aid.file(root, p.format),
                                 work, shared=proc.shared)
    rec = export_to(p, ctx, dict(kind="export", model=name, source="torch", path=p.name, format=p.format,
                                 framework=aid.framework, quantization=p.quantization))
    write_sidecar(root, aid, item["key"], rec)
    return {"status": "ok", "export_status": rec.status, "error": rec.error,
            "bytes": rec.metrics.get("size_bytes", 0)}


if __name__ == "__main__":
    from pipeline.workers import serve
    _proc = _Process()
    sys.exit(serve(lambda item, params: _export(item, params, _proc)))
