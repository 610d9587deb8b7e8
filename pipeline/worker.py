"""One isolated measurement: load one artifact with one runtime, time it, run the eval set.

    python -m pipeline.worker JOB.json

Runs in a fresh process per (artifact, runtime, threads) so that a native crash, a hang or an
out-of-memory in a runtime kills only this process; the parent records the signal or exit code.
Imports only numpy and the runtime (it also runs under `.venv-tflite-runtime`, numpy<2).
Writes its result JSON to job["result"] (atomically); outputs of the eval set to job["outputs"].
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np


def _status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return 0.0


def _apply_profile(job: dict) -> None:
    if job.get("cpus"):
        os.sched_setaffinity(0, set(job["cpus"]))
    if job.get("mem_limit_mb"):
        limit = int(job["mem_limit_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _inputs(job: dict, spec_inputs: list[dict]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The first eval sample as the timed input, plus the eval set; or generated inputs."""
    if job.get("eval"):
        with np.load(job["eval"]) as z:
            x = z[job.get("eval_key", "x")]
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{job['eval']}: inputs have dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32)
        if job.get("layout") == "nhwc" and x.ndim == 4:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if job.get("eval_limit"):
            x = x[:job["eval_limit"]]
        return [x[:1]], x
    shapes = job.get("shapes") or [s["shape"] for s in spec_inputs]
    if not shapes:
        raise ValueError("the model file carries no input shapes: give them with --shape")
    rng = np.random.default_rng(0)
    out = []
    for i, shape in enumerate(shapes):
        dtype = spec_inputs[i]["dtype"] if i < len(spec_inputs) else "float32"
        if any(int(d) < 1 for d in shape):
            raise ValueError(f"input {i} has a dynamic dimension {shape}: give it with --shape")
        if np.issubdtype(np.dtype(dtype), np.integer):
            info = np.iinfo(dtype)
            out.append(rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out, None


class LoadError(RuntimeError):
    pass


def describe_error(e: BaseException) -> str:
    """'Type: first non-empty line' of an exception (runtimes put tracebacks after the first line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else '(no message)'}"[:400]


def measure(job: dict) -> dict:
    _apply_profile(job)
    sys.path.insert(0, job["root"])
    from pipeline import runtimes
    from pipeline.stats import latency_stats

    from pipeline.validate import check_model_file

    check_model_file(job["artifact"])
    adapter = runtimes.get(job["runtime"])
    rss_base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        handle = adapter.load(job["artifact"], job["threads"])
    except Exception as e:  # noqa: BLE001 - name the file and the runtime in the one-line error
        raise LoadError(f"{job['artifact']}: {job['runtime']} cannot load it: {describe_error(e)}") from None
    load_s = time.perf_counter() - t0
    facts = adapter.describe(handle)
    inputs, eval_x = _inputs(job, facts.get("inputs", []))
    # NaN/Inf inputs make timings and agreement meaningless: say so in the record
    facts["inputs_have_nan_or_inf"] = not all(np.isfinite(a).all() for a in
                                              ([eval_x] if eval_x is not None else inputs))
    t0 = time.perf_counter()
    adapter.run(handle, inputs)
    first_s = time.perf_counter() - t0
    for _ in range(job["warmup"]):
        adapter.run(handle, inputs)
    lat: list[float] = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if len(lat) >= job["max_runs"] or elapsed >= job["max_seconds"]:
            break
        if len(lat) >= job["min_runs"] and elapsed >= job["min_seconds"]:
            break
        t = time.perf_counter()
        adapter.run(handle, inputs)
        lat.append(time.perf_counter() - t)
    # the loop's own cost per call, with a no-op in place of the runtime
    t = time.perf_counter()
    for _ in range(1000):
        t1 = time.perf_counter()
        time.perf_counter() - t1
    overhead_s = (time.perf_counter() - t) / 1000
    metrics = {"load_ms": load_s * 1e3, "first_inference_ms": first_s * 1e3,
               "warmup_runs": float(job["warmup"]), **latency_stats(lat),
               "harness_overhead_us": overhead_s * 1e6}
    nan_out = False
    if eval_x is not None and job.get("outputs"):
        outs = [adapter.run(handle, [eval_x[i:i + 1]])[0] for i in range(len(eval_x))]
        arr = np.concatenate([o.reshape(1, -1) for o in outs]).astype(np.float32)
        nan_out = bool(~np.isfinite(arr).all())
        tmp = job["outputs"] + ".tmp"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, job["outputs"])
    else:
        outs = adapter.run(handle, inputs)
        nan_out = any(bool(~np.isfinite(o).all()) for o in outs)
    metrics["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    metrics["peak_rss_above_baseline_mb"] = (_status_kb("VmHWM") - rss_base) / 1024
    metrics["baseline_rss_mb"] = rss_base / 1024
    facts["outputs_have_nan_or_inf"] = nan_out
    facts["runtime_version"] = adapter.version()
    return {"status": "ok", "metrics": metrics, "info": facts}


def main() -> int:
    job_path = sys.argv[1]
    with open(job_path) as f:
        job = json.load(f)
    sys.path.insert(0, job.get("root", "."))
    from pipeline.procutil import die_with_parent
    die_with_parent()
    try:
        result = measure(job)
    except Exception as e:  # noqa: BLE001 - any runtime error becomes the record's error line
        result = {"status": "failed", "error": describe_error(e)}
    tmp = job["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, job["result"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
