"""`quant-debug` stage: per-layer error tables for every int8 artifact of a model, then recovery plans.

    python -m pipeline quant-debug digits_cnn [--samples 200] [--no-plans]

Writes `kind="quant_debug"` records to results/results.jsonl:
- one per (int8 export path x source twin) holding the per-layer table in `info["layers"]`
  (`path` = the export path, e.g. `tflite_int8`, `et_xnnpack_int8`); int8 paths with no debugger
  wired are recorded as `unsupported` with the reason;
- one per recovery plan (`path` = `<export path>:<plan>`, `runtime` = the runtime that measured it) with
  accuracy (or reconstruction MSE), size, in-process p50 latency (1 thread) and delegation counts.
Plan artifacts go to `artifacts/<model>/quant_debug/`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

import models
from pipeline import fsutil
from pipeline import quant_debug as qd
from pipeline.schema import Record, first_line

DEBUGGED = {"tflite_int8": ("keras_tw", "keras"), "et_xnnpack_int8": ("torch",)}
MAX_CALIB_MORE = 1000   # "more calibration data" plan: up to this many training samples


def _quality(spec, out: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if spec.task == "classification":
        return {"accuracy": float((out.argmax(-1) == y).mean())}
    return {"reconstruction_mse": float(((out.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2).mean())}


def _eval_artifact(spec, runtime: str, path: Path, x_model: np.ndarray, x_torch: np.ndarray,
                   y: np.ndarray) -> dict:
    """Accuracy with the real runtime over the whole held-out set, latency in-process, delegation."""
    from pipeline import runtimes
    rt = runtimes.get(runtime)
    h = rt.load(path, 1)
    outs = np.concatenate([rt.run(h, [x_model[i:i + 1]])[0].reshape(1, -1) for i in range(len(x_model))])
    m = _quality(spec, outs, x_torch, y)
    m["latency_p50_ms"] = qd.time_ms(lambda: rt.run(h, [x_model[:1]]))
    m["size_bytes"] = float(path.stat().st_size)
    info = {}
    if runtime == "litert":
        d = rt.describe(h)
        m["delegated_ops"], m["non_delegated_ops"] = float(d["delegated_ops"]), float(d["non_delegated_ops"])
        info["not_delegated"] = d["not_delegated"]
    return {"metrics": m, "info": info}


def _rows(rows: list[qd.LayerError]) -> list[dict]:
    return [dataclasses.asdict(r) for r in rows]


def _table_record(spec, path: str, source: str, rows, extra_info: dict) -> Record:
    w = qd.worst(rows, 1)
    fmt = "tflite" if path.startswith("tflite") else "pte"
    return Record(kind="quant_debug", model=spec.name, status="ok", source=source, path=path, format=fmt,
                  framework="pytorch" if source == "torch" else "tensorflow", quantization="int8",
                  metrics={"worst_sqnr_db": w[0].sqnr_db if w else float("nan"), "layers": float(len(rows))},
                  info={"layers": _rows(rows), "worst_layer": w[0].layer if w else "", **extra_info})


def _plan_record(spec, path: str, plan: str, source: str, runtime: str, fmt: str, quant: str,
                 result: dict, description: str, fp32: dict, extra: dict | None = None) -> Record:
    m = dict(result["metrics"])
    for k, v in fp32.items():
        m[f"fp32_{k}"] = v
    if "accuracy" in m and "accuracy" in fp32:
        m["accuracy_drop_points"] = 100 * (fp32["accuracy"] - m["accuracy"])
    return Record(kind="quant_debug", model=spec.name, status="ok", source=source, path=f"{path}:{plan}",
                  format=fmt, framework="pytorch" if source == "torch" else "tensorflow", quantization=quant,
                  runtime=runtime, metrics=m,
                  info={"plan": plan, "description": description, **result["info"], **(extra or {})})


def _failed(spec, path, plan, source, e) -> Record:
    return Record(kind="quant_debug", model=spec.name, status="failed", source=source,
                  path=f"{path}:{plan}" if plan else path, error=first_line(e))


# ------------------------------------------------------------------------------------ TFLite

def tflite_plans(spec, kmodel, calib_k, x_k, x_t, y, tfl_rows, out_dir: Path, log, k_max=3) -> list[Record]:
    import tensorflow as tf
    recs = []

    def write(name: str, blob: bytes) -> Path:
        p = out_dir / f"keras_tw__tflite_{name}.tflite"
        fsutil.write_atomic(p, bytes(blob))
        return p

    fp32_p = write("fp32", tf.lite.TFLiteConverter.from_keras_model(kmodel).convert())
    fp32 = _eval_artifact(spec, "litert", fp32_p, x_k, x_t, y)
    fp32_q = {k: v for k, v in fp32["metrics"].items() if k in ("accuracy", "reconstruction_mse")}
    recs.append(_plan_record(spec, "tflite_int8", "fp32", "keras_tw", "litert", "tflite", "fp32", fp32,
                             "float reference (no quantization)", fp32_q))
    log(f"[quant-debug] tflite fp32: {fp32['metrics']}")
    worst = [r for r in qd.worst(tfl_rows, len(tfl_rows)) if not r.layer.startswith("(")]
    plans = [("int8", [], "plain full-integer int8 (per-channel weights), float I/O")]
    for k in range(1, min(k_max, len(worst)) + 1):
        plans.append((f"int8_denylist_worst{k}", worst[:k],
                      f"selective quantization: the {k} worst layer(s) by SQNR kept in float "
                      "(QuantizationDebugOptions.denylisted_nodes)"))
    plain = None
    for plan, keep, desc in plans:
        try:
            dbg, _ = qd.tflite_debugger(kmodel, calib_k, x_k[:2], denylisted_layers=[r.layer for r in keep])
            blob = dbg.get_nondebug_quantized_model()
            if keep and blob == plain:
                raise RuntimeError(f"denylisting {[r.layer for r in keep]} left the model unchanged")
            plain = plain or blob
            p = write(plan, blob)
            res = _eval_artifact(spec, "litert", p, x_k, x_t, y)
            recs.append(_plan_record(spec, "tflite_int8", plan, "keras_tw", "litert", "tflite", "int8", res, desc,
                                     fp32_q, {"kept_float": [r.layer for r in keep]}))
            log(f"[quant-debug] tflite {plan}: {res['metrics']}")
        except Exception as e:  # noqa: BLE001 - a plan the converter cannot do is a finding
            recs.append(_failed(spec, "tflite_int8", plan, "keras_tw", e))
            log(f"[quant-debug] tflite {plan}: failed: {first_line(e)}")
    try:
        p = write("int16x8", qd._tflite_converter(kmodel, calib_k, "16x8").convert())
        res = _eval_artifact(spec, "litert", p, x_k, x_t, y)
        recs.append(_plan_record(spec, "tflite_int8", "int16x8", "keras_tw", "litert", "tflite", "int16x8", res,
                                 "16-bit activations, 8-bit weights "
                                 "(EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)", fp32_q))
        log(f"[quant-debug] tflite int16x8: {res['metrics']}")
    except Exception as e:  # noqa: BLE001
        recs.append(_failed(spec, "tflite_int8", "int16x8", "keras_tw", e))
    return recs


# -------------------------------------------------------------------------------- ExecuTorch

def _lower(qmodel_or_model, example: np.ndarray, out: Path) -> dict:
    from export.executorch_paths import _lower_and_write
    from export.registry import ExportContext
    ep = qd._export(qmodel_or_model, example)
    with fsutil.atomic_path(out) as tmp:
        ctx = ExportContext(None, "torch", None, example, example, tmp, out.parent)
        info = _lower_and_write(ctx, ep, delegate=True)
    return info


def et_plans(spec, tmodel, calib, calib_more, x_t, y, et_rows, out_dir: Path, log, k_max=3) -> list[Record]:
    from pipeline.quant_debug import pt2e_prepare_calibrate, xnnpack_quantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e
    recs = []
    module_of = {n.replace(".", "_"): n for n in qd.weighted_modules(tmodel)}

    def measure(plan, model, quant, desc, fp32_q, extra=None):
        p = out_dir / f"torch__et_xnnpack_{plan}.pte"
        info = _lower(model, x_t[:1], p)
        res = _eval_artifact(spec, "executorch", p, x_t, x_t, y)
        res["metrics"]["delegated_ops"] = float(info["delegated_ops"])
        res["metrics"]["non_delegated_ops"] = float(info["non_delegated_ops"])
        res["info"]["not_delegated"] = info["not_delegated"]
        log(f"[quant-debug] executorch {plan}: {res['metrics']}")
        return _plan_record(spec, "et_xnnpack_int8", plan, "torch", "executorch", "pte", quant, res, desc,
                            fp32_q, extra)

    fp32_rec = measure("fp32", tmodel, "fp32", "float reference (XNNPACK fp32)", {})
    fp32_q = {k: fp32_rec.metrics[k] for k in ("accuracy", "reconstruction_mse") if k in fp32_rec.metrics}
    fp32_rec.metrics.update({f"fp32_{k}": v for k, v in fp32_q.items()})
    recs.append(fp32_rec)
    worst = [r for r in qd.worst(et_rows, len(et_rows)) if r.layer in module_of]
    plans = [("int8", dict(per_channel=True), calib, [], "PT2E XNNPACKQuantizer, per-channel weights"),
             ("int8_per_tensor", dict(per_channel=False), calib, [], "per-tensor weights"),
             ("int8_calib_more", dict(per_channel=True), calib_more, [],
              f"per-channel, calibrated on {len(calib_more)} training samples instead of {len(calib)}")]
    for k in range(1, min(k_max, len(worst)) + 1):
        plans.append((f"int8_fp32_worst{k}", dict(per_channel=True), calib, worst[:k],
                      f"the {k} worst layer(s) by SQNR left in fp32 (set_module_name(name, None))"))
    for plan, qargs, cal, keep, desc in plans:
        try:
            q = xnnpack_quantizer(skip_modules=[module_of[r.layer] for r in keep], **qargs)
            qm = convert_pt2e(pt2e_prepare_calibrate(tmodel, cal, q), fold_quantize=True)
            recs.append(measure(plan, qm, "int8", desc, fp32_q, {"kept_fp32": [r.layer for r in keep],
                                                                  "calibration_samples": len(cal)}))
        except Exception as e:  # noqa: BLE001
            recs.append(_failed(spec, "et_xnnpack_int8", plan, "torch", e))
            log(f"[quant-debug] executorch {plan}: failed: {first_line(e)}")
    return recs


# ------------------------------------------------------------------------------------- driver

def run(name: str, artifacts: Path, samples: int = qd.DEBUG_SAMPLES, plans: bool = True,
        log=print, ensure_trained: bool = True) -> tuple[list[Record], str]:
    """Every int8 artifact's per-layer table (+ plans). Returns the records and the printed table."""
    from export import registry
    from pipeline.train import load_eval, load_keras, load_torch, train
    spec = models.get(name)
    if ensure_trained:  # False: use the checkpoint folder as it is (e.g. one copied from elsewhere)
        train(spec, artifacts, force=False, log=log)
    data = load_eval(spec, artifacts)
    x_t, y, calib = data["x"], data["y"], data["calib"]
    x_dbg = x_t[:samples]
    recs: list[Record] = []
    tables: dict[str, list[qd.LayerError]] = {}
    order: list[str] = []
    for pname, p in registry.all_paths().items():
        if p.quantization != "int8":
            continue
        if pname not in DEBUGGED:
            for src in p.sources:
                recs.append(Record(kind="quant_debug", model=name, status="unsupported", source=src, path=pname,
                                   format=p.format, quantization="int8",
                                   error=f"no per-layer debugger wired for {pname} (only {', '.join(DEBUGGED)})"))
            continue
        for src in DEBUGGED[pname]:
            try:
                if pname == "tflite_int8":
                    km = load_keras(spec, artifacts, src)
                    dbg, order_k = qd.tflite_debugger(km, spec.to_keras(calib), spec.to_keras(x_dbg))
                    rows = qd.tflite_layer_errors(dbg, order_k)
                    order = order or order_k
                    info = {"debugger": "tf.lite.experimental.QuantizationDebugger", "error_kind": "local",
                            "debug_samples": len(x_dbg)}
                else:
                    rows, _ = qd.et_layer_errors(load_torch(spec, artifacts), calib, x_dbg, qd.xnnpack_quantizer())
                    info = {"debugger": "torchao.quantization.pt2e numeric debugger", "error_kind": "propagated",
                            "debug_samples": len(x_dbg)}
                tables[f"{src}__{pname}"] = rows
                recs.append(_table_record(spec, pname, src, rows, info))
                log(f"[quant-debug] {name} {src}__{pname}: {len(rows)} layers, worst "
                    f"{qd.worst(rows, 1)[0].layer if rows else '-'}")
            except Exception as e:  # noqa: BLE001 - one stack failing must not hide the other's table
                recs.append(_failed(spec, pname, "", src, e))
                log(f"[quant-debug] {name} {src}__{pname}: failed: {first_line(e)}")
    tfl, et = tables.get("keras_tw__tflite_int8", []), tables.get("torch__et_xnnpack_int8", [])
    text = (f"{name}: per-layer int8 error, same weights (keras_tw for TFLite, torch for ExecuTorch), "
            f"{len(x_dbg)} held-out samples.\nTFLite = this layer's own error (QuantizationDebugger); "
            f"PT2E = error accumulated up to this layer vs fp32. Lower SQNR = worse.\n"
            + qd.format_table(qd.joined_table(tfl, et, order)))
    if plans and (tfl or et):
        out_dir = qd.artifact_dir(artifacts, name)
        out_dir.mkdir(parents=True, exist_ok=True)
        if tfl:
            km = load_keras(spec, artifacts, "keras_tw")
            recs += tflite_plans(spec, km, spec.to_keras(calib), spec.to_keras(x_t), x_t, y, tfl, out_dir, log)
        if et:
            full = spec.load_data(spec.train.seed).x_train
            more = full[np.random.default_rng(1).permutation(len(full))[:MAX_CALIB_MORE]]
            recs += et_plans(spec, load_torch(spec, artifacts), calib, more, x_t, y, et, out_dir, log)
        text += "\n\n" + format_plans(recs)
    return recs, text


def best_plan(recs: list[Record], path: str) -> Record | None:
    """The smallest quantized plan within 1 point (or best accuracy if none is)."""
    plans = [r for r in recs if r.kind == "quant_debug" and r.status == "ok" and r.path.startswith(path + ":")
             and r.quantization != "fp32" and "accuracy" in r.metrics]
    if not plans:
        return None
    ok = [r for r in plans if r.metrics.get("accuracy_drop_points", 99) <= 1.0]
    if ok:
        return min(ok, key=lambda r: (r.metrics["size_bytes"], r.metrics["latency_p50_ms"]))
    return max(plans, key=lambda r: r.metrics["accuracy"])


def format_plans(recs: list[Record]) -> str:
    lines = [f"{'plan':<40} {'runtime':<10} {'quality':>9} {'drop pts':>8} {'KiB':>8} {'p50 ms':>8} "
             f"{'non-deleg ops':>13}"]
    for r in recs:
        if r.kind != "quant_debug" or ":" not in r.path:
            continue
        if r.status != "ok":
            lines.append(f"{r.path:<40} {r.status}: {r.error}")
            continue
        m = r.metrics
        q = m.get("accuracy", m.get("reconstruction_mse", float("nan")))
        lines.append(f"{r.path:<40} {r.runtime:<10} {q:9.4f} {m.get('accuracy_drop_points', float('nan')):8.2f} "
                     f"{m['size_bytes'] / 1024:8.1f} {m['latency_p50_ms']:8.3f} "
                     f"{m.get('non_delegated_ops', float('nan')):13.0f}")
    return "\n".join(lines)
