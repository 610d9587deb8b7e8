"""Run export paths for one model (train first if needed), in the export stage's worker processes:

    records = export_model("digits_cnn", Path("artifacts"), ["tflite_int8"])    # in this process
    python -m export.run JOB.json      # a long-lived worker (`pipeline/workers.py`: jobs `<model> train`,
                                       # `<model> export`), started by `pipeline/stages.py: export`

The stage runs one worker per parallel slot: the toolchains' imports (ExecuTorch's alone ~27 s on a
loaded 2-core machine) and their per-process setup (XNNPACK's pattern graphs) are paid once per slot,
not once per model.
The artifacts are those of a process per model (the .pte, .tflite and .onnx bytes are equal), except
that TorchScript numbers the classes it compiles per process (`___torch_mangle_N` in a .ptl): a .ptl's
bytes, not its code or outputs, depend on the models its worker exported before.

Every (source twin x path) writes `artifacts/<model>/<source>__<path>.<ext>` atomically plus a
sidecar `<source>__<path>.record.json` holding the cache key and the export `Record`. A record whose
key still matches the code and the trained weights is reused; one failed path never stops the others.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import models  # noqa: E402
from export import registry, toolchain  # noqa: E402
from pipeline import fsutil, workers  # noqa: E402
from pipeline.artifact import fresh_record, stored, write_sidecar  # noqa: E402
from pipeline.schema import Record, first_line, time_metric  # noqa: E402
from pipeline.train import cache_key as train_key, load_eval, load_keras, load_torch, train  # noqa: E402

EXPORT_CODE = [Path(__file__)]


def weights_hash(artifacts: Path, spec) -> str:
    """Content hash of the trained files (weights, eval/calibration data): retraining invalidates exports.
    Files that cannot be read raise (OSError, ValueError): a cache must miss then, never match on a
    hash of nothing."""
    from pipeline.train import train_dir
    d = train_dir(artifacts, spec.name)
    files = json.loads((d / "meta.json").read_text()).get("files", [])
    if not files:
        raise ValueError(f"{d / 'meta.json'}: names no trained files")
    return fsutil.sha256_text(*[fsutil.sha256_file(d / f) for f in files])


def export_key(spec, p: registry.ExportPath, weights: str = "") -> str:
    """Training (its key: code, library versions, config) + weights + the export code this path runs
    with the versions of the libraries it imports (`registry.code_key`) + the path's name."""
    return fsutil.sha256_text(train_key(spec), weights, registry.code_key(p, *EXPORT_CODE), p.name)


def cached_record(artifacts: Path, spec, source: str, p: registry.ExportPath, weights: str = "") -> Record | None:
    return fresh_record(artifacts, p.artifact(spec.name, source), export_key(spec, p, weights))


def run_path(spec, source: str, p: registry.ExportPath, model, data: dict, artifacts: Path,
             shared: dict | None = None, etrecord: bool = False) -> Record:
    """`shared`: what this twin's paths share (`ExportContext.shared`); None = nothing. `etrecord`: a
    .pte path also writes the ETRecord of its lowering beside the artifact (`etrecord_file`)."""
    aid = p.artifact(spec.name, source)
    art = aid.file(artifacts, p.format)
    example = data["x"][:1] if p.input_kind == "torch" else spec.to_keras(data["x"][:1])
    calib = data["calib"] if p.input_kind == "torch" else spec.to_keras(data["calib"])
    base = dict(kind="export", model=spec.name, source=source, path=p.name, format=p.format,
                framework=aid.framework, quantization=p.quantization)
    ctx = registry.ExportContext(spec, source, model, example, calib, art, art.parent,
                                 shared={} if shared is None else shared,
                                 etrecord=etrecord_file(artifacts, aid) if etrecord and p.format == "pte" else None)
    return export_to(p, ctx, base)


def etrecord_file(artifacts: Path, aid) -> Path:
    """Where a .pte's ETRecord goes: beside it (`pipeline/bench/opprofile.py` looks there)."""
    return aid.file(artifacts, "etrecord")


def export_to(p: registry.ExportPath, ctx: registry.ExportContext, base: dict) -> Record:
    """Run one path function on an in-memory model (`ctx.out` = the final artifact path): timing,
    atomic write, warnings, and any exception as a `failed`/`unsupported` record. Shared by the model
    exports above and the operator probes (`probes/`)."""
    art = ctx.out
    base = {**base, "artifact": stored(art)}
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fsutil.atomic_path(art) as tmp:
                ctx.out = tmp
                info = p.fn(ctx) or {}
        except registry.Unsupported as e:
            return Record(status="unsupported", error=first_line(str(e)), **base,
                          metrics={"export_seconds": time.perf_counter() - t0, **_phases(ctx)},
                          info={"warnings": _warning_lines(caught)})
        except toolchain.Established as e:   # shown once on a probe model, not by exporting this one
            return Record(status="failed", error=e.error, **base,
                          metrics={"export_seconds": time.perf_counter() - t0, **_phases(ctx)},
                          info={"warnings": _warning_lines(caught), "established_by": e.note})
        except Exception as e:  # noqa: BLE001 - a failed path is a result, whatever the toolchain raised
            return Record(status="failed", error=error_line(e), **base,
                          metrics={"export_seconds": time.perf_counter() - t0, **_phases(ctx)},
                          info={"warnings": _warning_lines(caught)})
        finally:
            ctx.out = art
    seconds = time.perf_counter() - t0
    info.setdefault("warnings", [])
    info["warnings"] = sorted(set(info["warnings"]) | set(_warning_lines(caught)))
    info["runtimes"] = list(p.runtimes)
    return Record(status="ok", **base, artifact_sha256=fsutil.sha256_file(art),
                  metrics={"export_seconds": seconds, "size_bytes": fsutil.size_bytes(art),
                           "size_zipped_bytes": fsutil.zipped_size(art), **_phases(ctx)}, info=info)


def _phases(ctx: registry.ExportContext) -> dict[str, float]:
    # the phases the path timed (`ctx.phase`); what they leave out of export_seconds is the driver's
    return {time_metric(k): v for k, v in ctx.times.items()}


def error_line(e: BaseException) -> str:
    """The error's first line, and its root cause's when it wraps one: ExecuTorch's pass manager
    re-raises "An error occurred when running the '<pass>' pass" from the assertion that says why."""
    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    return first_line(e) if root is e else f"{first_line(e)} <- caused by {first_line(root)}"


def _warning_lines(caught) -> list[str]:
    # deprecations (e.g. "Lite Interpreter is deprecated") are findings; keep each distinct first line
    lines = {f"{w.category.__name__}: {str(w.message).strip().splitlines()[0][:200]}"
             for w in caught if str(w.message).strip()}
    return sorted(lines)[:20]


def export_model(name: str, artifacts: Path, path_names: list[str] | None = None, force: bool = False,
                 log=print, etrecord: bool = False) -> list[Record]:
    """Each selected path x source twin, reusing what is up to date. `etrecord`: the .pte paths also
    write their ETRecord, from the same lowering call (an up-to-date .pte without one is made again)."""
    spec = models.get(name)
    train(spec, artifacts, force=False, log=log)
    paths = registry.paths_for(spec.task)   # a named path of another task is not this model's to run
    for n in path_names or []:
        registry.get(n)   # an unknown name fails here, listing the valid ones
    selected = [paths[n] for n in path_names if n in paths] if path_names else list(paths.values())
    data = load_eval(spec, artifacts)
    weights = weights_hash(artifacts, spec)
    records, loaded = [], {}
    jobs = [(src, p) for p in selected for src in p.sources]
    for i, (source, p) in enumerate(jobs, 1):
        tag = f"[export {spec.name} {i}/{len(jobs)}] {p.artifact(spec.name, source).stem}"
        rec = None if force else cached_record(artifacts, spec, source, p, weights)
        if rec is not None and etrecord and p.format == "pte" and rec.status == "ok" and \
                not etrecord_file(artifacts, p.artifact(spec.name, source)).exists():
            rec = None
        if rec is not None:
            log(f"{tag}: up to date ({rec.status})")
            records.append(rec)
            continue
        if source not in spec.sources:   # pretrained PyTorch weights: no native Keras twin
            rec = Record(kind="export", model=spec.name, source=source, path=p.name, format=p.format,
                         framework=p.artifact(spec.name, source).framework, quantization=p.quantization,
                         status="skipped", error=f"no {source} twin: {spec.weights} weights exist for "
                                                 f"PyTorch only (keras_tw carries them to TensorFlow)")
        else:
            if source not in loaded:   # the twin and what its paths share (one exported program)
                loaded[source] = (load_torch(spec, artifacts) if source == "torch"
                                  else load_keras(spec, artifacts, source)), _shared(spec, artifacts)
            model, shared = loaded[source]
            rec = run_path(spec, source, p, model, data, artifacts, shared, etrecord)
        write_sidecar(artifacts, p.artifact(spec.name, source), export_key(spec, p, weights), rec)
        log(f"{tag}: {rec.status} in {rec.metrics.get('export_seconds', 0):.1f}s"
            + (f" ({rec.metrics['size_bytes'] / 1024:.1f} KiB)" if rec.status == "ok" else f": {rec.error}"))
        records.append(rec)
    return records


def _shared(spec, artifacts: Path) -> dict:
    """What a twin's paths start from besides the model: a generative model's Hugging Face folder (its
    tokenizer beside it), which litert-torch's exporter reads and every LM record names."""
    if spec.task != "generation":
        return {}
    from pipeline.train_lm import hf_dir
    return {"hf_folder": hf_dir(artifacts, spec.name)}


def handle(item: dict, params: dict, say) -> dict:
    """One job of the export stage's long-lived worker (`pipeline/stages.py` through `workers.run_queue`):
    step "train" trains the model (or finds it trained); "export" trains it if needed, then runs its
    paths. Progress lines go to `say`. A Python exception ends that job only (its traceback to the
    output, the run log; its unfinished paths are the parent's to record); a native crash ends the
    process, and the parent starts a fresh one for the jobs still to do."""
    artifacts = Path(params["artifacts"])
    try:
        if item["step"] == "train":
            train(models.get(item["model"]), artifacts, force=False, log=say)
        else:
            export_model(item["model"], artifacts, params["paths"], params["force"], log=say,
                         etrecord=params.get("etrecord", False))
    except Exception as e:  # noqa: BLE001 - one model's failure must not end the others'
        traceback.print_exc(file=sys.stdout)
        return {"status": "failed", "error": workers.describe_error(e)}
    finally:
        _fresh_keras_session()
    return {"status": "ok"}


def _fresh_keras_session() -> None:
    # Keras numbers layer names per process (conv2d, conv2d_1, ...): start each model from zero, as a
    # process of its own would, so the artifacts do not depend on which models went before
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


if __name__ == "__main__":
    sys.exit(workers.serve(handle, say=True))
