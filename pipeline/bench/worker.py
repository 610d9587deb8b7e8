"""Isolated measurements: load an artifact with one runtime, time it, run the eval set.

    python -m pipeline.bench.worker JOB.json

Runs in a process apart from the harness so that a native crash, a hang or an out-of-memory in a
runtime kills only this process; the parent records the signal or exit code against the measurement
it was in, and a fresh worker goes on with the rest (`pipeline/workers.py`).
Imports only numpy and the runtime (it also runs under `.venv-tflite-runtime`, numpy<2).
JOB.json holds one item per measurement (one runtime; our artifacts: several files and profiles of one
memory ceiling), measured in turn in this one process, each result written to the progress file as it
is done; eval outputs to each item's "outputs". Each item sets its own profile (affinity, memory
ceiling, threads) and its records say where its seconds went (`time_<phase>_s`).
"""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass

import numpy as np

from pipeline.bench.stopping import Rule, ci_halfwidth_pct, repeat
from pipeline.workers import describe_error, serve


def _status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return 0.0


_ALL_CPUS = frozenset(os.sched_getaffinity(0))


def _apply_profile(job: dict) -> None:
    # a worker may run several profiles in turn: each sets its own affinity (all CPUs when it names none)
    os.sched_setaffinity(0, set(job["cpus"]) if job.get("cpus") else _ALL_CPUS)
    _reset_peak_rss()
    if job.get("mem_limit_mb"):
        limit = int(job["mem_limit_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux clear_refs 5), so each profile's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _inputs(job: dict, spec_inputs: list[dict]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The first eval sample as the timed input, plus the eval set; or generated inputs."""
    if job.get("eval"):
        with np.load(job["eval"]) as z:
            x = z["x"]
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{job['eval']}: inputs have dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32)
        if job.get("layout") == "nhwc" and x.ndim == 4:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if job.get("eval_limit"):
            x = x[:job["eval_limit"]]
        return [x[:1]], x
    return generated_inputs(os.path.basename(job["artifact"]), spec_inputs, job.get("shapes") or [],
                            given_inputs(job)), None


def given_inputs(job: dict) -> dict[str, np.ndarray]:
    """--input NAME=FILE.npy: values for inputs where a random value makes no sense (a sample rate)."""
    out = {}
    for name, f in (job.get("input_files") or {}).items():
        try:
            out[name] = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"--input {name}={f}: cannot read it as a .npy array: {describe_error(e)}") from None
    return out


def _fit(name: str, spec: dict, arr: np.ndarray) -> np.ndarray:
    """A given input array in its input's dtype: same kind of number, or a one-line error."""
    want = np.dtype(spec.get("dtype", "float32"))
    if arr.dtype.kind != want.kind and not (arr.dtype.kind in "iu" and want.kind in "iu"):
        raise ValueError(f"{name}: --input {spec['name']} has dtype {arr.dtype}, the input takes {want}")
    return arr.astype(want)


def generated_inputs(name: str, spec_inputs: list[dict], shapes: list,
                     given: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """Random inputs in each input's own dtype and shape (a user's file: no data of ours fits it),
    except the inputs the user gave values for (`given`, by input name).

    Shapes come from the file; `shapes` (from --shape; `()` for a scalar) replace them and must fit the
    inputs' count. A dynamic dimension (-1 in the signature) with no --shape is an error naming the file,
    unless the input's value is given."""
    given = given or {}
    names = [s["name"] for s in spec_inputs]
    for g in given:
        if g not in names:
            raise ValueError(f"{name}: --input {g!r}: the model has no input of that name "
                             f"(inputs: {', '.join(names) or 'none declared'})")
    if shapes and spec_inputs and len(shapes) != len(spec_inputs):
        raise ValueError(f"{name}: {len(shapes)} --shape given but the model takes {len(spec_inputs)} inputs")
    if shapes:
        for s, shape in zip(spec_inputs, shapes):
            if s["name"] in given and tuple(given[s["name"]].shape) != tuple(shape):
                raise ValueError(f"{name}: --input {s['name']} has shape {tuple(given[s['name']].shape)} "
                                 f"but --shape says {tuple(shape)}")
    if not shapes:
        if not spec_inputs:
            raise ValueError(f"{name}: the model file carries no input shapes: give one --shape per input")
        for s in spec_inputs:
            sig = s.get("shape_signature", s["shape"])
            if s["name"] in given:
                continue
            if any(int(d) < 1 for d in sig) or any(int(d) < 1 for d in s["shape"]):
                raise ValueError(f"{name}: input {s['name']!r} has a dynamic dimension {list(sig)} "
                                 "(-1 = dynamic): give its size with --shape")
        shapes = [list(given[s["name"]].shape) if s["name"] in given else s["shape"] for s in spec_inputs]
    rng = np.random.default_rng(0)
    out = []
    for i, shape in enumerate(shapes):
        if i < len(spec_inputs) and spec_inputs[i]["name"] in given:
            out.append(_fit(name, spec_inputs[i], given[spec_inputs[i]["name"]]))
            continue
        dtype = np.dtype(spec_inputs[i]["dtype"] if i < len(spec_inputs) else "float32")
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out.append(rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype))
        elif dtype == np.bool_:
            out.append(rng.integers(0, 2, size=shape).astype(np.bool_))
        else:
            out.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
    return out


def _eval_pass(adapter, handle, eval_x: np.ndarray, job: dict) -> list:
    """The first output of each eval sample, in order; on a slow artifact only the first ones: the pass
    stops once it has `eval_min_samples` and has run `eval_max_seconds` (0 = never early)."""
    budget, least = float(job.get("eval_max_seconds") or 0.0), int(job.get("eval_min_samples") or 1)
    outs, start = [], time.perf_counter()
    for i in range(len(eval_x)):
        if budget and i >= least and time.perf_counter() - start >= budget:
            break
        outs.append(adapter.run(handle, [eval_x[i:i + 1]])[0])
    return outs


def _rule(job: dict) -> Rule:
    """The job's stopping rule for one timing repeat (`pipeline/bench/stopping.py`)."""
    return Rule(job["min_runs"], job["min_seconds"], job["max_runs"], job["max_seconds"], job.get("ci_pct", 0.0))


def _first_use(adapter, threads: int) -> None:
    """Load and run the one-op model once, before any measurement of this process: what a runtime
    sets up on its first use (thread pools, kernel registries, ~5-25 ms and ~5-7 MB for the old
    TFLite interpreter) then lands in no artifact's load time or RSS, whichever artifact comes first
    in a shared worker."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"trivial.{adapter.FORMATS[0]}")
    if not os.path.exists(path):
        return
    try:
        adapter.run(adapter.load(path, threads), [np.zeros([1], np.float32)])
    except Exception:  # noqa: BLE001 - a runtime that cannot run it here (Core ML on Linux) is measured all the same
        pass


def _trivial_overhead(adapter, threads: int) -> float:
    """p50 (us) of a one-op model (x + 1 on one float) in the same runtime: the fixed cost per call
    of this harness + runtime, to read small latencies against."""
    fmt = adapter.FORMATS[0]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"trivial.{fmt}")
    handle = adapter.load(path, threads)
    x = [np.zeros([1], np.float32)]
    call = adapter.bind(handle, x)
    for _ in range(20):
        call()
    return float(np.median(repeat(call, Rule(500, 0.1, 5000, 1.0)))) * 1e6


class LoadError(RuntimeError):
    pass


def _process_age_s() -> float:
    """Seconds since this process started (Linux: its start time in clock ticks since boot)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])   # field 22, starttime
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class Process:
    """What this worker process keeps between its items: whether its start-up cost was charged (to its
    first item), and the LiteRT peer tool's process (`peer.Server`), started once for all its items."""
    started: bool = False
    peer: object = None


def measure_artifact(job: dict, proc: Process | None = None, times: dict | None = None) -> dict:
    """One item: one artifact, one runtime, one profile. Its `time_<phase>_s` metrics say where this
    item's seconds went (the first item of a process also carries the process start and imports);
    `times` gets them as they come, so a failed item still says what it cost."""
    proc = proc if proc is not None else Process()
    times = times if times is not None else {}
    _apply_profile(job)
    sys.path.insert(0, job["root"])
    from pipeline import runtimes
    from pipeline.bench.stats import latency_quantiles, latency_stats, repeat_spread
    from pipeline.filecheck.validate import check_model_file

    adapter = runtimes.get(job["runtime"])
    # import the runtime's modules before the clock and the memory baseline: an app pays the import
    # once at start-up, not per model (ExecuTorch's Python runtime imports torch: ~5 s, ~300 MB)
    try:
        adapter.import_runtime()
    except ImportError as e:
        raise RuntimeError(f"runtime {job['runtime']} is not installed ({describe_error(e)}): "
                           f"{adapter.INSTALL_HINT}") from None
    if not proc.started:   # interpreter, numpy, the runtime's import and first use: paid once per process
        proc.started = True
        _first_use(adapter, job["threads"])
        times["time_worker_start_s"] = _process_age_s()
    t_load = time.perf_counter()
    if not job.get("prechecked"):
        check_model_file(job["artifact"])
    rss_base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        handle = adapter.load(job["artifact"], job["threads"])
    except Exception as e:  # noqa: BLE001 - name the file and the runtime in the one-line error
        times["time_load_s"] = time.perf_counter() - t_load
        raise LoadError(f"{job['artifact']}: {job['runtime']} cannot load it: {describe_error(e)}") from None
    load_s = time.perf_counter() - t0
    shapes = job.get("shapes") or []
    if not shapes and job.get("input_files") and not job.get("eval"):
        # a dynamic input's size can come from the value the user gave for it
        given = given_inputs(job)
        shapes = [list(given[d["name"]].shape) if d["name"] in given else d["shape"]
                  for d in adapter.describe(handle).get("inputs", [])]
        job = {**job, "shapes": shapes}
    if shapes and not job.get("eval"):
        adapter.resize(handle, shapes, os.path.basename(job["artifact"]))
    facts = adapter.describe(handle)
    inputs, eval_x = _inputs(job, facts.get("inputs", []))
    # NaN/Inf inputs make timings and agreement meaningless: say so in the record
    facts["inputs_have_nan_or_inf"] = not all(np.isfinite(a).all() for a in
                                              ([eval_x] if eval_x is not None else inputs))
    t0 = time.perf_counter()
    times["time_load_s"] = t0 - t_load
    adapter.run(handle, inputs)
    first_s = time.perf_counter() - t0
    for _ in range(job["warmup"]):
        adapter.run(handle, inputs)
    # timed: the inference call alone, inputs bound once (as LiteRT's and ExecuTorch's own tools time it)
    call = adapter.bind(handle, inputs)
    rule = _rule(job)
    blocks = [repeat(call, rule) for _ in range(int(job.get("repeats", 1)))]
    lat = [x for b in blocks for x in b]
    # the same with input conversion and output copy (what an app calling run() per frame pays): a
    # figure read beside the p50, on a fixed small budget
    io = repeat(lambda: adapter.run(handle, inputs),
                Rule(min(rule.min_runs, 100), 0.0, rule.max_runs, min(rule.max_seconds, 0.5)))
    # the loop's own cost per call, with a no-op in place of the runtime
    t = time.perf_counter()
    for _ in range(1000):
        t1 = time.perf_counter()
        time.perf_counter() - t1
    overhead_s = (time.perf_counter() - t) / 1000
    metrics = {"load_ms": load_s * 1e3, "first_inference_ms": first_s * 1e3,
               "warmup_runs": float(job["warmup"]), **latency_stats(lat), **repeat_spread(blocks),
               # the least precise repeat: half its median's 95% confidence interval, in % of it
               "latency_p50_ci_pct": max(ci_halfwidth_pct(b) for b in blocks),
               "latency_p50_with_io_ms": float(np.median(io)) * 1e3,
               "harness_overhead_us": overhead_s * 1e6}
    t_quality = time.perf_counter()
    times["time_timing_s"] = t_quality - t0
    nan_out = False
    if eval_x is not None and job.get("outputs"):
        outs = _eval_pass(adapter, handle, eval_x, job)
        arr = np.concatenate([o.reshape(1, -1) for o in outs]).astype(np.float32)
        nan_out = bool(~np.isfinite(arr).all())
        tmp = job["outputs"] + ".tmp"
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, job["outputs"])
    else:
        outs = adapter.run(handle, inputs)
        nan_out = any(bool(~np.isfinite(o).all()) for o in outs)
        facts["output_shapes"] = [list(o.shape) for o in outs]
    t = time.perf_counter()
    times["time_quality_s"] = t - t_quality
    metrics["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    metrics["peak_rss_above_baseline_mb"] = (_status_kb("VmHWM") - rss_base) / 1024
    metrics["baseline_rss_mb"] = rss_base / 1024
    facts["outputs_have_nan_or_inf"] = nan_out
    facts["runtime_version"] = adapter.version()
    facts["timed_call"] = adapter.TIMED_CALL
    trivial = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", f"trivial.{adapter.FORMATS[0]}")
    if os.path.exists(trivial):  # a runtime without one just lacks the figure
        metrics["trivial_model_p50_us"] = _trivial_overhead(adapter, job["threads"])
    t_op = time.perf_counter()
    times["time_trivial_s"] = t_op - t
    out = {"status": "ok"}
    if job.get("peer"):
        out["peer"] = _peer(job, len(lat) / max(int(job.get("repeats", 1)), 1), proc)
        times["time_peer_s"] = time.perf_counter() - t_op
        t_op = time.perf_counter()
    if job.get("op_profile"):
        try:
            from pipeline.bench import opprofile
            facts["op_profile"] = opprofile.profile(job["artifact"], job["runtime"], job["threads"], inputs)
        except Exception as e:  # noqa: BLE001 - a profiler failure must not lose the measurement
            facts["op_profile"] = {"method": "", "ops": [], "note": f"profiler failed: {type(e).__name__}: "
                                   f"{str(e).splitlines()[0][:200] if str(e) else ''}"}
        times["time_opprofile_s"] = time.perf_counter() - t_op
    facts["latency_quantiles_ms"] = latency_quantiles(lat)
    return {**out, "metrics": {**metrics, **times}, "info": facts}


def _peer(job: dict, runs_per_repeat: float, proc: Process) -> dict:
    """LiteRT's own benchmark tool (`pipeline/bench/peer.py`, in a process of its own that this worker
    keeps for all its items) on the same file, threads and CPUs, as many runs as one of our repeats
    (100-5000); with its median on the one-op model (once per threads and CPUs). Run here, after our
    timing, so it never runs beside it."""
    from pipeline.bench import peer
    cpus, mem = tuple(job.get("cpus") or ()), int(job.get("mem_limit_mb") or 0)
    if proc.peer is None or (proc.peer.mem_limit_mb, proc.peer.timeout_s) != (mem, job["peer_timeout_s"]):
        if proc.peer is not None:
            proc.peer.close()
        proc.peer = peer.Server(mem, job["peer_timeout_s"])
    res = proc.peer.run(job["artifact"], job["threads"], cpus, runs=int(min(max(runs_per_repeat, 100), 5000)),
                        warmup=job["warmup"])
    if "error" not in res:
        res["trivial_median_ms"] = proc.peer.trivial_median_ms(job["threads"], cpus)
    return res


def _measure_or_error(job: dict, params: dict, proc: Process | None = None) -> dict:
    times: dict[str, float] = {}
    try:
        return measure_artifact(job, proc, times)
    except Exception as e:  # noqa: BLE001 - any runtime error becomes the record's error line
        name = os.path.basename(job.get("artifact", ""))
        msg = describe_error(e)
        return {"status": "failed", "error": (msg if name in msg else f"{name}: {msg}")[:400], "metrics": times}
    finally:
        _release()


def _release() -> None:
    """Give the finished item's memory back before the next item of this process: its handles are
    garbage now, and glibc keeps freed heap unless trimmed. The next item's RSS baseline, peak and
    memory ceiling then start from the process's imports, not from the previous artifact."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass   # not glibc: the memory is reused by the next item all the same


if __name__ == "__main__":
    _proc = Process()
    sys.exit(serve(lambda job, params: _measure_or_error(job, params, _proc)))
