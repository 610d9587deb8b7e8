"""The ladder's measurements as `compat` records: one per artifact x released runtime, judged by the one
parity policy (the caller's `judge`, from pipeline/parity.py), with what the release lacks.

    recs = records.measure_exports(export_records, samples_of, compare, judge, "default", cache_dir)

Shared by the zoo (`python -m pipeline compat`, `zoo.py`) and `python -m pipeline package` (its
candidates): same worker, same cache, same record fields.

A record: kind "compat", the artifact's identity from its export record, `runtime` = the release as a
pip requirement ("ai-edge-litert==1.2.0"), status ok | mismatch (ran, computes something else) | failed
(the release rejects or crashes on the file) | skipped (no environment for the release here, with the
reason); info: `release` (label, position in the ladder), `stage` (env | load | run | crash | hang),
`lacks` ({"kind": "op", "op": "FULLY_CONNECTED", "version": 12}, or {}), `declared` (what the file
says it needs: a .tflite's min_runtime_version metadata, an .onnx file's IR version and opsets).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipeline import fsutil
from pipeline.artifact import ArtifactId, resolve
from pipeline.compat import ladder, measure
from pipeline.schema import Record


def declared(path: Path, fmt: str) -> dict:
    """What the file itself says it needs, read without running it."""
    try:
        if fmt == "tflite":
            from pipeline.package.manifest import tflite_facts
            return {"min_runtime_version": tflite_facts(path)["min_runtime_version"]}
        if fmt == "onnx":
            import onnx
            m = onnx.load(str(path), load_external_data=False)
            return {"ir_version": int(m.ir_version),
                    "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in m.opset_import}}
    except Exception as e:  # noqa: BLE001 - an unreadable declaration is not a measurement's failure
        return {"error": f"{type(e).__name__}: {e}"[:200]}
    return {}


def measure_exports(exports: list[Record], samples_of: Callable[[Record], tuple[Path, str]],
                    compare: Callable[[Record, list], dict], judge: Callable[[Record, dict], tuple[str, str]],
                    which: str, cache_dir: Path, jobs: int = 2, rebuild: bool = False, log=print,
                    sandboxed: bool = False) -> list[Record]:
    """Every ok export record of a laddered format on every release of `which`. `samples_of(export)` ->
    (.npz of its inputs, hash of those inputs and the references); `compare(export, outputs)` -> parity
    metrics; `judge(export, metrics)` -> (status, reason) by the parity policy. `sandboxed`: the files
    are made from a user's model (measure.run)."""
    exports = [e for e in exports if e.kind == "export" and e.status == "ok" and e.format in ladder.formats()]
    by_id, items = {}, []
    for e in exports:
        label = ArtifactId.of(e).label
        by_id[label] = e
        samples, refs_key = samples_of(e)
        items.append(measure.Item(label, resolve(e.artifact), e.format, e.artifact_sha256 or
                                  fsutil.sha256_file(resolve(e.artifact)), samples, refs_key))
    results = measure.run(items, which, lambda it, outs: compare(by_id[it.id], outs), cache_dir,
                          jobs=jobs, rebuild=rebuild, log=log, sandboxed=sandboxed)
    said = {label: declared(resolve(e.artifact), e.format) for label, e in by_id.items()}
    return [_record(by_id[r.item_id], r, said[r.item_id], judge) for r in results]


def _record(e: Record, r: measure.Result, said: dict, judge) -> Record:
    rung = ladder.by_id(r.rung)
    status, error = r.status, r.error
    if status == "ok":
        status, error = judge(e, r.metrics)
    return Record(kind="compat", model=e.model, source=e.source, path=e.path, format=e.format,
                  framework=e.framework, quantization=e.quantization, runtime=rung.id, artifact=e.artifact,
                  artifact_sha256=e.artifact_sha256, status=status, error=error, metrics=dict(r.metrics),
                  info={"release": {"label": rung.label, "product": rung.product, "dist": rung.dist,
                                    "version": rung.version, "position": ladder.position(rung)},
                        "stage": r.stage, "lacks": r.lacks, "declared": said, "seconds": round(r.seconds, 3),
                        "runtime_version": r.version})
