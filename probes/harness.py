"""The operator support matrix: export every probe along every path, run each artifact in its
runtime(s), compare with the framework's own output, classify each cell.

    python -m pipeline probe [--ops conv2d,gru] [--paths tflite_fp32,et_xnnpack_fp32] [--jobs 2]

Exports run in worker processes per (framework, batch of probes) and runtimes in worker processes
per (runtime, batch of artifacts) (`pipeline/workers.py`: a native crash costs one cell). Exports are
cached by a hash of the probe + export code; runtime results by artifact, reference and worker code.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import probes
from export import registry
from pipeline import fsutil, parity, progress, runtimes, workers
from pipeline.artifact import FRAMEWORK_OF_SOURCE, ArtifactId, resolve
from pipeline.schema import Record, first_line, read_record_file

# ptl_mobile_optimized needs XNNPACK inside torch itself, which this CPU build lacks: never runs here
SKIP_PATHS = ("ptl_mobile_optimized",)
DELEGATED_PATHS = ("et_xnnpack_fp32", "et_xnnpack_int8")
# ExecuTorch graph bookkeeping that is never a kernel: not counted as "left outside XNNPACK"
ET_NOT_OPS = {"getitem", "output", "placeholder"}
HERE = Path(__file__).parent
PROBE_CODE = sorted(HERE.glob("*.py"))
EXPORT_CODE = sorted((HERE.parent / "export").glob("*.py"))
RUN_CODE = [HERE / "run_worker.py", HERE / "harness.py", HERE.parent / "pipeline" / "workers.py"] + \
    sorted((HERE.parent / "pipeline" / "runtimes").glob("*.py")) + \
    sorted((HERE.parent / "pipeline" / "explain").glob("*.py"))   # the evidence and file facts cached with it


def selected_paths(names: list[str] | None = None) -> list[registry.ExportPath]:
    paths = registry.paths_for("classification")   # a probe is one operator's classic model
    chosen = [registry.get(n) for n in names] if names else [p for p in paths.values() if p.name not in SKIP_PATHS]
    return chosen


def _source(p: registry.ExportPath) -> str:
    return "torch" if p.input_kind == "torch" else "keras"


def _export_key(probe: str, path: str) -> str:
    return fsutil.sha256_text(fsutil.source_hash([HERE / "__init__.py", HERE / "ops.py", HERE / "export_worker.py"]
                                                 + EXPORT_CODE), probe, path)


def _sidecar(folder: Path, probe: str, source: str, path: str) -> Path:
    return ArtifactId(probe, source, path or "ref").sidecar(folder)


def _cached(folder: Path, probe: str, source: str, path: str) -> dict | None:
    f = _sidecar(folder, probe, source, path)
    try:
        saved = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("key") != _export_key(probe, path):
        return None
    result = saved["result"]
    if not path:
        return result if (folder / probe / f"{source}.ref.npz").exists() else None
    rec = result.get("record")
    if rec and rec["status"] == "ok":
        art = fsutil.ROOT / rec["artifact"]
        if not art.exists() or fsutil.sha256_file(art) != rec["artifact_sha256"]:
            return None
    return result


def _chunks(items: list, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


def export_all(names: list[str], paths: list[registry.ExportPath], folder: Path, jobs: int, log) -> dict:
    """(probe, source, path) -> worker result ({"status", "record"|"error"}); path "" = reference."""
    results, todo = {}, {"torch": [], "keras": []}
    for name in names:
        for source in ("torch", "keras"):
            wanted = [""] + [p.name for p in paths if _source(p) == source]
            if len(wanted) == 1:
                continue
            stale = []
            for path in wanted:
                hit = _cached(folder, name, source, path)
                if hit is None:
                    stale.append(path)
                else:
                    results[(name, source, path)] = hit
            if stale:
                todo[source].append((name, [""] + [p for p in stale if p]))
    batches = []
    for source, per_probe in todo.items():
        for chunk in _chunks(per_probe, jobs) if per_probe else []:
            items = [{"id": f"{n}/{p}", "probe": n, "path": p} for n, ps in chunk for p in ps]
            batches.append((source, items))
    if batches:
        log(f"[probe] exporting {sum(len(b[1]) for b in batches)} items in {len(batches)} worker batch(es)")

    steps = progress.Progress(sum(len(b[1]) for b in batches), in_all=False)

    def one(batch):
        source, items = batch

        def done(i, res):
            probe, _, path = i.partition("/")
            log(steps.tag(f"[probe export] {probe} {source} {path or 'reference'}: {_said(res)}"))
        return source, items, workers.run(workers.Job("probes.export_worker", items, {"source": source,
                                                      "out_dir": str(folder)}, timeout_s=300), done)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for source, items, out in pool.map(one, batches):
            for it in items:
                res = out[it["id"]]
                results[(it["probe"], source, it["path"])] = res
                # a converter that crashes natively crashes again on the same code (cached); a timeout
                # may be the machine's load, so the next run tries again
                if res["status"] == "ok" or "record" in res or "timed out" not in res.get("error", ""):
                    fsutil.write_json_atomic(_sidecar(folder, it["probe"], source, it["path"]),
                                             {"key": _export_key(it["probe"], it["path"]), "result": res})
    return results


def _said(res: dict) -> str:
    """A worker result in a few words for its progress line (the record keeps the whole error)."""
    if res.get("status") == "ok":
        return "ok"
    err = res.get("error") or (res.get("record") or {}).get("error") or ""
    return f"{res.get('status', 'failed')}: {first_line(err)[:100]}" if err else str(res.get("status", "failed"))


def _export_record(res: dict, probe: str, source: str, p: registry.ExportPath) -> Record:
    if "record" in res:
        return Record.from_dict(res["record"])
    return Record(kind="probe", model=f"probe_{probe}", source=source, path=p.name, format=p.format,
                  framework=FRAMEWORK_OF_SOURCE[source], quantization=p.quantization,
                  status="failed", error=res.get("error") or "export worker failed", info={"probe": probe})


# ---------------------------------------------------------------- comparison

def _match(outs: list[np.ndarray], refs: list[np.ndarray]) -> list[int]:
    """Runtime output for each reference output: same size, smallest difference (TFLite may reorder)."""
    used, order = set(), []
    for r in refs:
        best, err = -1, None
        for j, o in enumerate(outs):
            if j in used or o.size != r.size:
                continue
            e = float(np.nanmax(np.abs(o.reshape(-1).astype(np.float64) - r.reshape(-1).astype(np.float64)),
                                initial=0) if r.size else 0.0)
            e = np.inf if np.isnan(o).any() and not np.isnan(r).any() else e
            if err is None or e < err:
                best, err = j, e
        if best < 0:
            raise ValueError(f"no runtime output has the reference's {r.size} elements "
                             f"(runtime gave {[tuple(o.shape) for o in outs]})")
        used.add(best)
        order.append(best)
    return order


def compare(outs: list[np.ndarray], refs: list[np.ndarray], checks: tuple[str, ...], quant: str,
            inputs: list[np.ndarray] = ()) -> dict:
    """Metrics and a verdict; `error` is set when the artifact does not match its reference, and then
    `evidence` says where the first failing output differs and what `inputs` were there
    (`pipeline/explain/evidence.py`: the values beyond the bound judged here)."""
    from pipeline.explain import evidence
    if len(outs) != len(refs):
        return {"error": f"mismatch: runtime gave {len(outs)} outputs, the reference has {len(refs)}",
                "metrics": {}}
    order = _match(outs, refs)
    m = {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "sqnr_db": np.inf, "exact_mismatches": 0.0}
    errors, ev = [], None
    for k, (ref, check) in enumerate(zip(refs, checks)):
        o = outs[order[k]].reshape(-1).astype(np.float64)
        r = ref.reshape(-1).astype(np.float64)
        n_err = len(errors)
        if check == "exact":
            per_value = 0.0
            bad = int(np.sum(o != r))
            m["exact_mismatches"] += bad
            if bad:
                errors.append(f"output {k}: {bad}/{r.size} values differ (exact check)")
        else:
            scale = float(np.max(np.abs(r))) or 1.0
            step = (float(r.max() - r.min()) or scale) / 255    # int8: one output quantization step
            per_value = parity.probe_value_bound(quant, scale, step)
            if not np.isfinite(o).all():
                errors.append(f"output {k}: {int((~np.isfinite(o)).sum())} non-finite values")
                m["max_abs_diff"] = float("inf")
            else:
                diff = np.abs(o - r)
                mad = float(diff.max(initial=0))
                sqnr = float(10 * np.log10(np.sum(r ** 2) / np.sum(diff ** 2))) if np.sum(diff ** 2) > 0 else np.inf
                m["max_abs_diff"] = max(m["max_abs_diff"], mad)
                m["max_rel_diff"] = max(m["max_rel_diff"], mad / scale)
                m["sqnr_db"] = min(m["sqnr_db"], sqnr)
                miss = parity.judge_probe_output(k, quant, mad, scale, step, sqnr)
                if miss:
                    errors.append(miss)
        if len(errors) > n_err and ev is None:
            ev = {"output": k, **evidence.of(ref, outs[order[k]], inputs, per_value)}
    m = {k: v for k, v in m.items() if np.isfinite(v)}  # identical outputs: no finite SQNR to record
    out = {"error": ("mismatch: " + "; ".join(errors)) if errors else "", "metrics": m}
    return {**out, "evidence": ev} if ev else out


# ---------------------------------------------------------------- runtime

def _run_key(art_sha: str, runtime: str, ref: Path, probe: probes.Probe, quant: str) -> str:
    return fsutil.sha256_text(art_sha, runtime, fsutil.sha256_file(ref), repr(probe.outputs), quant,
                              fsutil.source_hash(RUN_CODE))


def run_all(cells: list[tuple], folder: Path, cache: Path, jobs: int, log) -> list[Record]:
    """cells: (probe, export Record) with status ok. One record per (cell x runtime)."""
    from pipeline.explain import filefacts
    records, pending = [], {}
    for probe, exp in cells:
        p = registry.get(exp.path)
        ref = folder / probe.name / f"{exp.source}.ref.npz"
        # what the file computes (operators, small constants), read once per artifact: every runtime's
        # record carries it (the report's explanations and the article's operators read it)
        facts = filefacts.of(resolve(exp.artifact), exp.format) if exp.format in filefacts.FORMATS else None
        for rt in p.runtimes:
            base = exp.__dict__ | {"runtime": rt, "metrics": dict(exp.metrics),
                                   "info": {**exp.info, **({"file": facts} if facts else {})}}
            base.pop("created")
            adapter = runtimes.get(rt)
            if not adapter.available():
                records.append(Record(**{**base, "status": "skipped",
                                         "error": f"runtime {rt} is not installed: {adapter.INSTALL_HINT}"}))
                continue
            why = adapter.cannot_run_here()
            if why:   # no worker for a runtime that runs nothing on this host (Core ML on Linux: each
                # cell used to wait out its 120 s timeout in coremltools' predict)
                records.append(_cell_record({"status": "failed", "error": why},
                                            {"artifact": str(resolve(exp.artifact))}, probe, base))
                continue
            key = _run_key(exp.artifact_sha256, rt, ref, probe, exp.quantization)
            hit = cache / f"{key}.json"
            cached = read_record_file(hit)
            if cached is not None:
                records.append(cached)
                continue
            with np.load(ref) as z:
                n_in = sum(1 for k in z.files if k.startswith("in_0_"))
                n_sets = 1 + max(int(k.split("_")[1]) for k in z.files)
            item = {"id": f"{probe.name}/{exp.path}/{rt}", "artifact": str(resolve(exp.artifact)),
                    "ref": str(ref), "inputs": n_in, "sets": n_sets,
                    "outputs": str(ArtifactId(probe.name, exp.source, exp.path).file(folder, f"{rt}.out.npz"))}
            pending.setdefault(rt, []).append((item, probe, base, hit))
    batches = []
    for rt, entries in pending.items():
        for chunk in _chunks(entries, jobs if len(entries) > 8 else 1):
            batches.append((rt, chunk))
    if batches:
        log(f"[probe] running {sum(len(b[1]) for b in batches)} artifacts in {len(batches)} runtime batch(es)")

    steps = progress.Progress(sum(len(b[1]) for b in batches), in_all=False)

    recheck = []    # mismatches a default delegate took part in: run again with it off, then cached

    def one(batch):
        rt, entries = batch
        by_id = {e[0]["id"]: e for e in entries}
        recs = {}

        def done(i, res):   # judged as soon as the worker is done with it: the line names the cell
            item, probe, base, hit = by_id[i]
            rec = recs[i] = _cell_record(res, item, probe, base)
            if rec.info.get("cell") == "mismatch" and rec.info.get("runtime_delegates"):
                recheck.append((rec, by_id[i]))
            elif "worker" not in rec.error:  # deaths and timeouts are retried next time
                fsutil.write_atomic(hit, rec.to_json())
            log(steps.tag(f"[probe run] {i.rsplit('/', 1)[0]} {rt}: {rec.info.get('cell', rec.status)}"
                          + (f": {rec.error.removeprefix('mismatch: ')[:100]}" if rec.error else "")
                          + (f"; cause: {_cause(rec)}" if "evidence" in rec.info else "")))
        workers.run(workers.Job("probes.run_worker", tuple(e[0] for e in entries), {"runtime": rt},
                                python=runtimes.get(rt).python(), timeout_s=120), done)
        return [recs[e[0]["id"]] for e in entries]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for recs in pool.map(one, batches):
            records += recs
    _without_delegates(recheck, log)
    return records


def _without_delegates(recheck: list, log) -> None:
    """Each mismatch that ran with a default delegate, run again with only the runtime's own kernels:
    the evidence's `without_delegate` says whether it still differs, with the same outputs or not (the
    converter's file, or the delegate?), and how many delegates that run applied (0)."""
    by_rt: dict[str, list] = {}
    for rec, entry in recheck:
        by_rt.setdefault(rec.runtime, []).append((rec, entry))
    for rt, pairs in by_rt.items():
        items = {e[0]["id"]: {**e[0], "delegates": False,
                              "outputs": e[0]["outputs"].replace(".out.npz", ".plain.out.npz")} for _, e in pairs}
        results = workers.run(workers.Job("probes.run_worker", tuple(items.values()), {"runtime": rt},
                                          python=runtimes.get(rt).python(), timeout_s=120))
        for rec, (item, probe, base, hit) in pairs:
            res = results[item["id"]]
            plain = _cell_record(res, items[item["id"]], probe, {**base, "info": {}})
            off = {"cell": plain.info.get("cell", plain.status), "delegates": plain.info.get("runtime_delegates")}
            if res["status"] == "ok":
                with np.load(item["outputs"]) as a, np.load(items[item["id"]]["outputs"]) as b:
                    off["same_outputs"] = all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)
            else:
                off["error"] = plain.error
            rec.info["evidence"] = {**rec.info.get("evidence", {}), "without_delegate": off}
            if "worker" not in rec.error + off.get("error", ""):
                fsutil.write_atomic(hit, rec.to_json())
            log(f"[probe run] {item['id'].rsplit('/', 1)[0]} {rt} without its delegate: {off['cell']}"
                + ("" if "same_outputs" not in off else ", the same outputs" if off["same_outputs"]
                   else ", other outputs"))


def _cell_record(res: dict, item: dict, probe: probes.Probe, base: dict) -> Record:
    info = dict(base["info"])
    if res["status"] != "ok":
        # exported for devices this host is not (Core ML on Linux): nothing ran, so neither ok nor failed
        away, reason = parity.runs_elsewhere(item["artifact"], base["format"])
        info["cell"] = away or "runtime_failed"
        info.update({away: reason} if away else {})
        return Record(**{**base, "status": away or "failed", "error": first_line(res["error"]), "info": info})
    info.update({f"runtime_{k}": v for k, v in res["info"].items()})
    info["runtime_version"] = res.get("runtime_version", "")
    with np.load(item["ref"]) as z, np.load(item["outputs"]) as o:
        metrics, error, ev = dict(base["metrics"]), "", None
        for s in range(item["sets"]):
            refs, outs, ins = (_arrays(f, f"{kind}_{s}_") for f, kind in ((z, "out"), (o, "out"), (z, "in")))
            try:
                c = compare(outs, refs, probe.outputs, base["quantization"], ins)
            except ValueError as e:
                c = {"error": f"mismatch: {e}", "metrics": {}}
            for k, v in c["metrics"].items():
                metrics[k] = min(metrics.get(k, v), v) if k == "sqnr_db" else max(metrics.get(k, v), v)
            if c["error"] and not error:
                error = c["error"] + (f" (input set {s}: shapes {[tuple(x.shape) for x in outs]})" if s else "")
                ev = {"input_set": s, **c["evidence"]} if c.get("evidence") else None
    if error:
        info["cell"] = "mismatch"
        if ev:
            info["evidence"] = ev
        return Record(**{**base, "status": "failed", "error": error[:300], "metrics": metrics, "info": info})
    outside = _outside_delegate(base, info)
    info["outside_xnnpack"] = outside
    info["cell"] = "not_delegated" if outside else "ok"
    return Record(**{**base, "status": "ok", "metrics": metrics, "info": info})


def _cause(rec: Record) -> str:
    """A mismatch's cause in short, for its progress line (`pipeline/explain/rules.py`)."""
    from pipeline.explain import rules
    return rules.explain(rec.info.get("evidence"), rec.info.get("file"), rec.quantization).short


def _arrays(z, prefix: str) -> list[np.ndarray]:
    """`prefix0`, `prefix1`, ... of an .npz in their numeric order."""
    return [z[k] for k in sorted((k for k in z.files if k.startswith(prefix)), key=lambda k: int(k.rsplit("_", 1)[1]))]


def _outside_delegate(base: dict, info: dict) -> list[str]:
    """Operators that ran on the reference kernels instead of XNNPACK (paths/runtimes with a delegate)."""
    if base["path"] in DELEGATED_PATHS:
        return sorted(set(info.get("not_delegated", [])) - ET_NOT_OPS)
    if base["format"] == "tflite":
        return sorted(info.get("runtime_not_delegated", []))
    return []


# ---------------------------------------------------------------- driver

def run(names: list[str] | None, path_names: list[str] | None, artifacts: Path, results: Path, jobs: int = 2,
        log=print) -> list[Record]:
    t0 = time.perf_counter()
    all_probes = probes.all_probes()
    names = names or list(all_probes)
    for n in names:
        probes.get(n)
    paths = selected_paths(path_names)
    folder = artifacts / "probes"
    exported = export_all(names, paths, folder, jobs, log)
    t_export = time.perf_counter() - t0
    records, cells = [], []
    for n in names:
        probe = all_probes[n]
        for p in paths:
            source = _source(p)
            ref = exported.get((n, source, ""), {"status": "failed", "error": "no reference"})
            exp = _export_record(exported[(n, source, p.name)], n, source, p)
            if ref["status"] != "ok" and exp.status == "ok":
                exp = Record(**{**exp.__dict__, "status": "failed", "error": ref["error"]})
            if exp.status == "ok":
                cells.append((probe, exp))
            else:
                exp.info["cell"] = "export_failed"
                records.append(exp)
    records += run_all(cells, folder, results / "cache" / "probe", jobs, log)
    total = time.perf_counter() - t0
    counts = {c: sum(r.info.get("cell") == c for r in records) for c in parity.PROBE_CELLS}
    log(f"[probe] {len(names)} probes x {len(paths)} paths -> {len(records)} records in {total:.1f}s "
        f"(export phase {t_export:.1f}s): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return records


def save(results: Path, new: list[Record]) -> None:
    """Merge into results.jsonl; a rerun cell replaces every older record of the same probe x path
    (an export failure has no runtime, so the plain key merge would keep it next to a later success)."""
    from pipeline.schema import read_records
    from pipeline.stages import results_file
    cells = {(r.info.get("probe"), r.path) for r in new}
    old = [r for r in read_records(results_file(results))
           if not (r.kind == "probe" and (r.info.get("probe"), r.path) in cells)]
    fsutil.write_atomic(results_file(results), "".join(r.to_json() + "\n" for r in old + new))
