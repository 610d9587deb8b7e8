"""`quant-debug` stage: per-layer error tables for every int8 artifact of a model, then recovery plans.

    python -m pipeline quant-debug digits_cnn [--samples 200] [--no-plans] [--force]

Writes `kind="quant_debug"` records to results/results.jsonl:
- one per exported int8 artifact x source (`runtime` set: litert / executorch / onnxruntime): quality
  with the real runtime on the whole held-out set vs its fp32 sibling (accuracy drop in points, or %
  more reconstruction MSE), size, p50 and delegation coverage (share of operators and of time outside
  the delegate, `pipeline/quant/delegation.py`); `skipped` with the reason when the export is missing;
- one per (int8 export path x source twin) holding the per-layer table in `info["layers"]`
  (`runtime` empty; `tflite_int8`, `et_xnnpack_int8`); int8 paths with no debugger wired
  (litert_torch_int8, onnx_int8) are recorded as `unsupported` with the reason;
- one per recovery plan (`path` = `<export path>:<plan>`, `runtime` = the runtime that measured it) with
  the same metrics as the artifacts.
Plan artifacts and the cached result go to `artifacts/<model>/quant_debug/`: a rerun whose inputs
(trained weights + eval data, the artifacts, this code, library versions, options) are unchanged
reuses `result.json` instead of recomputing.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

import models
from pipeline import fsutil, progress
from pipeline.artifact import FRAMEWORK_OF_SOURCE, ArtifactId, export_record, ok_file
from pipeline.quant import debug as qd
from pipeline.quant.plans import DEBUGGED, loss
from pipeline.schema import Record, first_line

MAX_CALIB_MORE = 1000   # "more calibration data" plan: up to this many training samples


QUALITY_TASKS = ("classification", "reconstruction")   # the tasks _quality knows


def _quality(spec, out: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if spec.task == "classification":
        return {"accuracy": float((out.argmax(-1) == y).mean())}
    return {"reconstruction_mse": float(((out.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2).mean())}


def latency_p50_ms(runtime: str, path: Path, x1: np.ndarray) -> float:
    """p50 (ms, 1 thread: the bench's big-core profile) of one sample `x1`, timed by the bench's isolated
    worker like every bench latency (bound inputs, the inference call alone; 3 warm-up runs, >= 20 runs
    and >= 0.3 s): a runtime that crashes on the file costs this artifact, not the stage."""
    import tempfile
    from pipeline.bench import harness, profiles
    cfg = profiles.BenchConfig(profiles=("big-core",), warmup=3, min_runs=20, min_seconds=0.3, max_runs=2000,
                               repeats=1, op_profile=False, peer=False)
    with tempfile.TemporaryDirectory(prefix="mb-qd-time-") as tmp:
        npz = Path(tmp) / "x.npz"
        np.savez(npz, x=x1)
        t = harness.Target(artifact=path, format=path.suffix[1:], runtimes=(runtime,), eval_npz=npz)
        r = harness.measure_one(t, runtime, profiles.get("big-core"), cfg, Path(tmp), want_outputs=False).record
    if r.status != "ok":
        raise RuntimeError(f"{path.name}: timing with {runtime}: {r.error}")
    return r.metrics["latency_p50_ms"]


def _eval_artifact(spec, runtime: str, path: Path, x_model: np.ndarray, x_torch: np.ndarray,
                   y: np.ndarray, ops: dict | None = None) -> dict:
    """Quality with the real runtime over the whole held-out set, latency in the bench's worker (1 thread)
    and delegation coverage (share of operators and of time outside the delegate)."""
    from pipeline import runtimes
    from pipeline.quant import delegation as quant_delegation
    rt = runtimes.get(runtime)
    h = rt.load(path, 1)
    outs = np.concatenate([rt.run(h, [x_model[i:i + 1]])[0].reshape(1, -1) for i in range(len(x_model))])
    m = _quality(spec, outs, x_torch, y)
    m["latency_p50_ms"] = latency_p50_ms(runtime, path, x_model[:1])
    m["size_bytes"] = float(path.stat().st_size)
    info = {}
    if path.suffix in (".tflite", ".pte"):
        cov = quant_delegation.coverage(path, [x_model[:1]], ops)
        for k in ("delegated_ops", "non_delegated_ops", "ops_outside_share", "time_outside_share"):
            m[k] = float(cov[k])
        info.update(not_delegated=cov["not_delegated"], time_outside_method=cov["method"],
                    time_outside_kind=cov["time_kind"])
    return {"metrics": m, "info": info}


def vs_fp32(m: dict, fp32: dict) -> dict:
    """The quality metrics of `m` next to the fp32 reference: accuracy drop in points, or the relative
    increase of the reconstruction MSE in percent (for reconstruction models)."""
    from pipeline.parity import quality_loss
    out = {f"fp32_{k}": v for k, v in fp32.items()}
    if "accuracy" in m and "accuracy" in fp32:
        out["accuracy_drop_points"] = quality_loss("accuracy", m["accuracy"], fp32["accuracy"])
    if "reconstruction_mse" in m and fp32.get("reconstruction_mse"):
        out["mse_increase_pct"] = quality_loss("reconstruction_mse", m["reconstruction_mse"], fp32["reconstruction_mse"])
    return out


def _quality_of(m: dict) -> dict:
    return {k: v for k, v in m.items() if k in ("accuracy", "reconstruction_mse")}


def _rows(rows: list[qd.LayerError]) -> list[dict]:
    return [dataclasses.asdict(r) for r in rows]


def _table_record(spec, path: str, source: str, rows, extra_info: dict) -> Record:
    w = qd.worst(rows, 1)
    fmt = "tflite" if path.startswith("tflite") else "pte"
    return Record(kind="quant_debug", model=spec.name, status="ok", source=source, path=path, format=fmt,
                  framework=FRAMEWORK_OF_SOURCE[source], quantization="int8",
                  metrics={"worst_sqnr_db": w[0].sqnr_db if w else float("nan"),
                           "layers": float(len(qd.per_layer(rows))), "compared_ops": float(len(rows))},
                  info={"layers": _rows(rows), "worst_layer": w[0].layer if w else "", **extra_info})


def _plan_record(spec, path: str, plan: str, source: str, runtime: str, fmt: str, quant: str,
                 result: dict, description: str, fp32: dict, extra: dict | None = None) -> Record:
    m = dict(result["metrics"])
    m.update(vs_fp32(m, fp32))
    return Record(kind="quant_debug", model=spec.name, status="ok", source=source, path=f"{path}:{plan}",
                  format=fmt, framework=FRAMEWORK_OF_SOURCE[source], quantization=quant,
                  runtime=runtime, metrics=m,
                  info={"plan": plan, "description": description, **result["info"], **(extra or {})})


def _failed(spec, path, plan, source, e) -> Record:
    return Record(kind="quant_debug", model=spec.name, status="failed", source=source,
                  path=f"{path}:{plan}" if plan else path, error=first_line(e))


# ------------------------------------------------------------------------------------ TFLite

def _plan_file(out_dir: Path, stem: str, fn, ctx_of) -> tuple[Path, dict]:
    """Run a registry path function (`fn(ctx)`, or a variant of one) into `out_dir/<stem>`, atomically:
    a plan is made as the export makes its artifact -> (the file, the function's info)."""
    p = out_dir / stem
    with fsutil.atomic_path(p) as tmp:
        info = fn(ctx_of(tmp)) or {}
    return p, info


def tflite_plans(spec, kmodel, calib_k, x_k, x_t, y, tfl_rows, out_dir: Path, log, k_max=3) -> list[Record]:
    from export import tflite_paths
    recs = []

    def export(name: str, fn) -> Path:
        return _plan_file(out_dir, f"keras_tw__tflite_{name}.tflite", fn,
                          lambda tmp: qd.context(kmodel, calib_k, tmp, spec, "keras_tw", x_k[:1]))[0]

    fp32_p = export("fp32", tflite_paths.tflite_fp32)
    fp32 = _eval_artifact(spec, "litert", fp32_p, x_k, x_t, y)
    fp32_q = _quality_of(fp32["metrics"])
    recs.append(_plan_record(spec, "tflite_int8", "fp32", "keras_tw", "litert", "tflite", "fp32", fp32,
                             "float reference (no quantization)", fp32_q))
    log(f"[quant-debug] tflite fp32: {fp32['metrics']}")
    worst = [r for r in qd.worst(qd.per_layer(tfl_rows), len(tfl_rows)) if not r.layer.startswith("(")]
    plans = [("int8", [], "the tflite_int8 path: full-integer int8 (per-channel weights), int8 I/O")]
    for k in range(1, min(k_max, len(worst)) + 1):
        plans.append((f"int8_denylist_worst{k}", worst[:k],
                      f"selective quantization: the {k} worst layer(s) by SQNR kept in float "
                      "(QuantizationDebugOptions.denylisted_nodes)"))
    for plan, keep, desc in plans:
        try:
            if keep:    # the path's converter, calibrated, then quantized with these layers left in float
                dbg, _ = qd.tflite_debugger(kmodel, calib_k, x_k[:2], denylisted_layers=[r.layer for r in keep])
                blob = qd.quantized_model(dbg)
                if blob == qd.quantized_model(dbg, denylisted=False):
                    raise RuntimeError(f"denylisting {[r.layer for r in keep]} left the model unchanged")
                p = out_dir / f"keras_tw__tflite_{plan}.tflite"
                fsutil.write_atomic(p, bytes(blob))
            else:
                p = export(plan, tflite_paths.tflite_int8)
            res = _eval_artifact(spec, "litert", p, x_k, x_t, y)
            recs.append(_plan_record(spec, "tflite_int8", plan, "keras_tw", "litert", "tflite", "int8", res, desc,
                                     fp32_q, {"kept_float": [r.layer for r in keep]}))
            log(f"[quant-debug] tflite {plan}: {res['metrics']}")
        except Exception as e:  # noqa: BLE001 - a plan the converter cannot do is a finding
            recs.append(_failed(spec, "tflite_int8", plan, "keras_tw", e))
            log(f"[quant-debug] tflite {plan}: failed: {first_line(e)}")
    try:
        p = export("int16x8", lambda ctx: tflite_paths.full_integer(ctx, activations="int16"))
        res = _eval_artifact(spec, "litert", p, x_k, x_t, y)
        recs.append(_plan_record(spec, "tflite_int8", "int16x8", "keras_tw", "litert", "tflite", "int16x8", res,
                                 "16-bit activations and I/O, 8-bit weights "
                                 "(EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)", fp32_q))
        log(f"[quant-debug] tflite int16x8: {res['metrics']}")
    except Exception as e:  # noqa: BLE001
        recs.append(_failed(spec, "tflite_int8", "int16x8", "keras_tw", e))
        log(f"[quant-debug] tflite int16x8: failed: {first_line(e)}")
    return recs


# -------------------------------------------------------------------------------- ExecuTorch

def fp32_candidates(tmodel) -> dict[str, str]:
    """Candidates for "leave in fp32" (per-layer table name -> module name): the layers XNNPACKQuantizer
    quantizes (conv/linear); a layer norm or GRU is fp32 already, so skipping it would change nothing."""
    mods = dict(tmodel.named_modules())
    return {n.replace(".", "_"): n for n in qd.weighted_modules(tmodel)
            if type(mods[n]).__name__ in ("Conv1d", "Conv2d", "Linear", "ConvTranspose2d")}


def et_plans(spec, tmodel, calib, calib_more, x_t, y, et_rows, out_dir: Path, log, k_max=3) -> list[Record]:
    from export import executorch_paths
    recs = []
    module_of = fp32_candidates(tmodel)

    def time_plan(plan, fn, cal, quant, desc, fp32_q, extra=None):
        p, info = _plan_file(out_dir, f"torch__et_xnnpack_{plan}.pte", fn,
                             lambda tmp: qd.context(tmodel, cal, tmp, spec, "torch", x_t[:1]))
        res = _eval_artifact(spec, "executorch", p, x_t, x_t, y, ops=info)
        log(f"[quant-debug] executorch {plan}: {res['metrics']}")
        return _plan_record(spec, "et_xnnpack_int8", plan, "torch", "executorch", "pte", quant, res, desc,
                            fp32_q, extra)

    fp32_rec = time_plan("fp32", executorch_paths.et_xnnpack_fp32, calib, "fp32", "float reference (XNNPACK fp32)", {})
    fp32_q = _quality_of(fp32_rec.metrics)
    fp32_rec.metrics.update(vs_fp32(fp32_rec.metrics, fp32_q))   # drop 0 by definition, not NaN
    recs.append(fp32_rec)
    worst = [r for r in qd.worst(qd.per_layer(et_rows), len(et_rows)) if r.layer in module_of]
    plans = [("int8", dict(per_channel=True), calib, [], "the et_xnnpack_int8 path: PT2E XNNPACKQuantizer, "
                                                          "per-channel weights"),
             ("int8_per_tensor", dict(per_channel=False), calib, [], "per-tensor weights"),
             ("int8_calib_more", dict(per_channel=True), calib_more, [],
              f"per-channel, calibrated on {len(calib_more)} training samples instead of {len(calib)}")]
    for k in range(1, min(k_max, len(worst)) + 1):
        plans.append((f"int8_fp32_worst{k}", dict(per_channel=True), calib, worst[:k],
                      f"the {k} worst layer(s) by SQNR left in fp32 (set_module_name(name, None))"))
    for plan, qargs, cal, keep, desc in plans:
        skip = [module_of[r.layer] for r in keep]
        try:
            recs.append(time_plan(plan, lambda ctx: executorch_paths.xnnpack_int8(ctx, skip_modules=skip, **qargs),
                                  cal, "int8", desc, fp32_q, {"kept_fp32": [r.layer for r in keep],
                                                              "calibration_samples": len(cal)}))
        except Exception as e:  # noqa: BLE001
            recs.append(_failed(spec, "et_xnnpack_int8", plan, "torch", e))
            log(f"[quant-debug] executorch {plan}: failed: {first_line(e)}")
    return recs


# ------------------------------------------------------------------------------------- driver

CODE = [Path(qd.__file__), Path(__file__), Path(__file__).with_name("delegation.py"),
        Path(__file__).with_name("plans.py"), Path(__file__).parents[1] / "bench" / "worker.py"]   # times the latency
DEBUGGED_PATHS = ("tflite_int8", "et_xnnpack_int8", "tflite_fp32", "et_xnnpack_fp32")   # whose functions it runs


def _int8_artifacts(spec, artifacts: Path) -> list[tuple[str, str, object, Record | None]]:
    """(path name, source, ExportPath, export record or None) for every int8 path x source."""
    from export import registry
    return [(pname, src, p, export_record(artifacts, p.artifact(spec.name, src)))
            for pname, p in registry.all_paths().items() if p.quantization == "int8" for src in p.sources]


def cache_key(spec, artifacts: Path, samples: int, plans: bool) -> str:
    """Trained weights + eval data, the int8/fp32 artifacts measured, this code and the libraries:
    any change recomputes, anything else reuses the stored result."""
    from importlib.metadata import version
    from export.run import weights_hash
    arts = sorted(f"{pn}:{src}:{rec.artifact_sha256 if rec else '-'}"
                  for pn, src, _, rec in _int8_artifacts(spec, artifacts))
    fp32 = []
    for pn, src, _, rec in _int8_artifacts(spec, artifacts):
        f = _fp32_twin(spec, artifacts, pn, src)
        fp32.append(f"{pn}:{src}:{f.artifact_sha256 if f else '-'}")
    libs = [f"{m}=={version(m)}" for m in ("tensorflow-cpu", "executorch", "torchao", "ai-edge-litert", "torch")]
    model_src = Path(__import__(spec.build_torch.__module__, fromlist=["_"]).__file__)
    from export import registry
    code = CODE + [model_src] + [f for p in DEBUGGED_PATHS for f in registry.code_files(registry.get(p))]
    return fsutil.sha256_text(weights_hash(artifacts, spec), fsutil.source_hash(sorted(set(code))),
                              *arts, *sorted(fp32), *libs, str(samples), str(plans))


def _fp32_twin(spec, artifacts: Path, pname: str, src: str) -> Record | None:
    """The fp32 sibling's export record (`registry.fp32_sibling`), when its file is there."""
    from export import registry
    sibling = registry.fp32_sibling(pname)
    rec = export_record(artifacts, ArtifactId(spec.name, src, sibling)) if sibling else None
    return rec if ok_file(rec) else None


def artifact_records(spec, artifacts: Path, x: np.ndarray, y: np.ndarray, log) -> list[Record]:
    """Every exported int8 artifact (the real pipeline's files) measured like a plan: quality vs its
    fp32 sibling from the same source, size, p50 and delegation coverage. `runtime` names who ran it."""
    out = []
    for pname, src, p, rec in _int8_artifacts(spec, artifacts):
        aid = p.artifact(spec.name, src)
        base = dict(kind="quant_debug", model=spec.name, source=src, path=pname, format=p.format,
                    framework=aid.framework, quantization="int8", runtime=(p.runtimes or ("",))[0])
        if ok_file(rec) is None:
            why = f"export {rec.status}: {rec.error}" if rec and rec.status != "ok" else "not exported yet"
            out.append(Record(status="skipped", error=f"no {aid.stem} artifact ({why})", **base))
            log(f"[quant-debug] {aid.label}: skipped: {why}")
            continue
        try:
            xm = spec.to_keras(x) if src in ("keras", "keras_tw") else x
            res = _eval_artifact(spec, base["runtime"], ok_file(rec), xm, x, y,
                                 ops=rec.info if p.format == "pte" else None)
            fp = _fp32_twin(spec, artifacts, pname, src)
            fp32_q = {}
            if fp is not None:
                from pipeline import runtimes
                rt = runtimes.get(base["runtime"])
                h = rt.load(ok_file(fp), 1)
                outs = np.concatenate([rt.run(h, [xm[i:i + 1]])[0].reshape(1, -1) for i in range(len(xm))])
                fp32_q = _quality(spec, outs, x, y)
                res["metrics"]["fp32_size_bytes"] = float(ok_file(fp).stat().st_size)
            res["metrics"].update(vs_fp32(res["metrics"], fp32_q))
            out.append(Record(status="ok", artifact=rec.artifact, artifact_sha256=rec.artifact_sha256,
                              metrics=res["metrics"], info={**res["info"], "artifact_kind": "exported",
                                                            "fp32_artifact": fp.artifact if fp else ""},
                              **base))
            log(f"[quant-debug] {aid.label}: {_quality_of(res['metrics'])} vs fp32 {fp32_q}")
        except Exception as e:  # noqa: BLE001 - one artifact a runtime cannot run is a finding
            out.append(Record(status="failed", error=first_line(e), **base))
            log(f"[quant-debug] {aid.label}: failed: {first_line(e)}")
    return out


def _cache_file(artifacts: Path, name: str) -> Path:
    return qd.artifact_dir(artifacts, name) / "result.json"


def run(name: str, artifacts: Path, samples: int = qd.DEBUG_SAMPLES, plans: bool = True,
        log=print, ensure_trained: bool = True, force: bool = False) -> tuple[list[Record], str]:
    """Every int8 artifact's per-layer table (+ plans). Returns the records and the printed table.
    Reuses the stored result when its cache key (weights, data, artifacts, code, libraries, options)
    is unchanged."""
    from pipeline.train import load_eval, train
    spec = models.get(name)
    if spec.task not in QUALITY_TASKS:
        # its quality vs fp32 has no unit yet (no labels, nothing reconstructed): say so, do not guess
        raise ValueError(f"quant-debug {name}: task {spec.task!r} has no quality measure here (it measures "
                         f"{' or '.join(QUALITY_TASKS)} models); compare its int8 artifacts by parity "
                         "(SQNR, max abs diff) in the bench records")
    if ensure_trained:  # False: use the checkpoint folder as it is (e.g. one copied from elsewhere)
        train(spec, artifacts, force=False, log=log)
    key = cache_key(spec, artifacts, samples, plans)
    cf = _cache_file(artifacts, name)
    if not force and cf.exists():
        try:
            saved = json.loads(cf.read_text())
            if saved.get("key") == key:
                log(f"[quant-debug] {name}: up to date ({cf}), reusing the stored result")
                return [Record.from_dict(r) for r in saved["records"]], saved["text"]
        except (ValueError, KeyError, TypeError):
            pass
    recs, text = _compute(spec, artifacts, samples, plans, log, load_eval(spec, artifacts))
    fsutil.write_json_atomic(cf, {"key": key, "records": [dataclasses.asdict(r) for r in recs], "text": text})
    return recs, text


def plan_steps(tfl_worst: int | None, et_worst: int | None, k_max: int = 3) -> int:
    """How many measured plans `tflite_plans` and `et_plans` run (one progress line each), given how
    many layers each may keep in float (None: that stack has no table, so no plans)."""
    return ((3 + min(k_max, tfl_worst)) if tfl_worst is not None else 0) + \
        ((4 + min(k_max, et_worst)) if et_worst is not None else 0)


def _compute(spec, artifacts: Path, samples: int, plans: bool, log, data: dict) -> tuple[list[Record], str]:
    from pipeline.train import load_keras, load_torch
    name = spec.name
    x_t, y, calib = data["x"], data["y"], data["calib"]
    x_dbg = x_t[:samples]
    # every step below prints one line: artifacts measured, then per-layer tables, then plans (their
    # number is known once the tables are: until then the most there can be)
    n_art = len(_int8_artifacts(spec, artifacts))
    steps = progress.Progress(2 * n_art + (plan_steps(3, 3) if plans else 0), in_all=False)
    log = steps.say(log)
    recs: list[Record] = artifact_records(spec, artifacts, x_t, y, log)
    tables: dict[str, list[qd.LayerError]] = {}
    order: list[str] = []
    for pname, src, p, _ in _int8_artifacts(spec, artifacts):
        if pname not in DEBUGGED or src not in DEBUGGED[pname]:
            recs.append(Record(kind="quant_debug", model=name, status="unsupported", source=src, path=pname,
                               format=p.format, quantization="int8",
                               error=f"no per-layer debugger for {pname}: the per-layer tables cover the "
                                     f"TFLite converter and PT2E quantizers ({', '.join(DEBUGGED)})"))
            log(f"[quant-debug] {ArtifactId(name, src, pname).label}: no per-layer debugger (unsupported)")
            continue
        try:
            if pname == "tflite_int8":
                km = load_keras(spec, artifacts, src)
                dbg, order_k = qd.tflite_debugger(km, spec.to_keras(calib), spec.to_keras(x_dbg))
                rows = qd.tflite_layer_errors(dbg, order_k)
                order = order or order_k
                info = {"debugger": "tf.lite.experimental.QuantizationDebugger", "error_kind": "local",
                        "debug_samples": len(x_dbg)}
            else:
                rows, _ = qd.et_layer_errors(load_torch(spec, artifacts), calib, x_dbg)
                info = {"debugger": "torchao.quantization.pt2e numeric debugger", "error_kind": "propagated",
                        "debug_samples": len(x_dbg)}
            if not rows:
                raise RuntimeError("the debugger compared no quantized layer")
            tables[(src, pname)] = rows
            recs.append(_table_record(spec, pname, src, rows, info))
            log(f"[quant-debug] {ArtifactId(name, src, pname).label}: {len(qd.per_layer(rows))} layers ({len(rows)} ops), worst {qd.worst(rows, 1)[0].layer}")
        except Exception as e:  # noqa: BLE001 - one stack failing must not hide the other's table
            recs.append(_failed(spec, pname, "", src, e))
            log(f"[quant-debug] {ArtifactId(name, src, pname).label}: failed: {first_line(e)}")
    tfl, et = tables.get(("keras_tw", "tflite_int8"), []), tables.get(("torch", "et_xnnpack_int8"), [])
    text = (f"{name}: per-layer int8 error, same weights (keras_tw for TFLite, torch for ExecuTorch), "
            f"{len(x_dbg)} held-out samples.\nTFLite = this layer's own error (QuantizationDebugger); "
            f"PT2E = error accumulated up to this layer vs fp32. Lower SQNR = worse.\n"
            + qd.format_table(qd.joined_table(tfl, et, order)))
    text += "\n\nExported int8 artifacts vs their fp32 siblings (real runtimes, whole held-out set):\n" + \
        format_plans(recs, exported=True)
    tmodel = load_torch(spec, artifacts) if plans and et else None
    cands = fp32_candidates(tmodel) if tmodel is not None else {}
    tfl_worst = len([r for r in qd.per_layer(tfl) if not r.layer.startswith("(")]) if tfl else None
    et_worst = len([r for r in qd.per_layer(et) if r.layer in cands]) if et else None
    steps.expect(2 * n_art + (plan_steps(tfl_worst, et_worst) if plans else 0))
    if plans and (tfl or et):
        out_dir = qd.artifact_dir(artifacts, name)
        out_dir.mkdir(parents=True, exist_ok=True)
        if tfl:
            km = load_keras(spec, artifacts, "keras_tw")
            recs += tflite_plans(spec, km, spec.to_keras(calib), spec.to_keras(x_t), x_t, y, tfl, out_dir, log)
        if et:
            full = spec.load_data(spec.train.seed).x_train
            more = full[np.random.default_rng(1).permutation(len(full))[:MAX_CALIB_MORE]]
            recs += et_plans(spec, tmodel, calib, more, x_t, y, et, out_dir, log)
        text += "\n\nRecovery plans:\n" + format_plans(recs)
    return recs, text


def format_plans(recs: list[Record], exported: bool = False) -> str:
    lines = [f"{'plan' if not exported else 'artifact':<40} {'runtime':<10} {'quality':>9} {'fp32':>9} "
             f"{'loss':>7} {'KiB':>8} {'p50 ms':>8} {'ops out':>7} {'time out':>8}"]
    for r in recs:
        if r.kind != "quant_debug" or (":" in r.path) == exported or (exported and not r.runtime):
            continue
        name = r.path if not exported else ArtifactId.of(r).stem
        if r.status != "ok":
            lines.append(f"{name:<40} {r.status}: {r.error}")
            continue
        m = r.metrics
        q = m.get("accuracy", m.get("reconstruction_mse", float("nan")))
        fq = m.get("fp32_accuracy", m.get("fp32_reconstruction_mse", float("nan")))
        lines.append(f"{name:<40} {r.runtime:<10} {q:9.4f} {fq:9.4f} {loss(m):7.2f} "
                     f"{m['size_bytes'] / 1024:8.1f} {m['latency_p50_ms']:8.3f} "
                     f"{100 * m.get('ops_outside_share', float('nan')):6.0f}% "
                     f"{100 * m.get('time_outside_share', float('nan')):7.0f}%")
    lines.append("loss = accuracy points (or % more reconstruction MSE) lost vs fp32; ops/time out = share "
                 "of operators / of time outside the delegate (TFLite time: prefix-timing estimate)")
    return "\n".join(lines)
