"""Where the numbers come from: the machine, the package versions, the device profiles, record ids.

`run_record()` is collected once per bench run and stored with the results (kind="pipeline",
path="provenance"); the report prints it in its header. Versions are read from package metadata
(no imports of the heavy packages), including the separate tflite-runtime venv.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
from importlib import metadata

from pipeline import fsutil
from pipeline.schema import Record

PACKAGES = ("torch", "executorch", "torchao", "tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert",
            "litert-torch", "onnxruntime", "numpy", "matplotlib",
            # Core AI: a beta API that drifts between releases, so every run says which one it measured
            "coreai-core", "coreai-torch", "coreai-opt", "coreai-onnx", "tf2onnx")
TFLITE_RUNTIME_VENV = fsutil.ROOT / ".venv-tflite-runtime"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# the instruction sets int8 kernels depend on: without a VNNI dot-product instruction (AVX-VNNI,
# AVX512-VNNI, AMX), x86 int8 GEMM widens to 16 bits and can lose to fp32 FMA on small layers
SIMD_FLAGS = ("sse4_1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "amx_int8", "asimd", "asimddp", "i8mm")


def simd_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in SIMD_FLAGS if x in have]
    except OSError:
        pass
    return []


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0, "simd": simd_flags(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine(),
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    # the old interpreter lives in its own venv (numpy<2): read its metadata from there
    for site in sorted(TFLITE_RUNTIME_VENV.glob("lib/python*/site-packages")):
        for dist in metadata.distributions(path=[str(site)]):
            if dist.metadata["Name"] in ("tflite-runtime", "tflite_runtime"):
                out["tflite-runtime"] = dist.version
    return out


def run_record(profile_names: tuple[str, ...] = (), settings=None, measured: dict | None = None) -> Record:
    """One record per run: machine, package versions and the device profiles used, in the run's
    order (`profile_order`: records are written with sorted keys, so the dict cannot keep it), the
    bench settings (`settings`, a BenchConfig: the report states the stopping rule from them), and this
    CPU's peak figures, measured now (two child processes, 3-5 s) unless `measured` gives them: a run
    that measured nothing new keeps the figures of the run that did."""
    from pipeline.bench import profiles
    profs = {n: {"threads": p.threads, "cpus": list(p.cpus), "mem_limit_mb": p.mem_limit_mb,
                 "description": p.description}
             for n, p in profiles.PROFILES.items() if not profile_names or n in profile_names}
    from pipeline.bench.cost import cpu_peak_gflops, xnnpack_conv_ceiling
    return Record(kind="pipeline", model="", path="provenance", status="ok",
                  metrics=dict(measured) if measured else {**cpu_peak_gflops(), **xnnpack_conv_ceiling()},
                  info={"machine": machine(), "versions": versions(), "profiles": profs,
                        "profile_order": list(profile_names or profs),
                        **({"bench_settings": dataclasses.asdict(settings)} if settings is not None else {})})


def profile_order(run: Record | None) -> list[str]:
    """The run's device profiles in the order it measured them: the first one is where accuracy, the
    operator profile and the repeats are measured (`BenchConfig.profiles[0]`). [] when unknown (no
    run record, or one written before the order was stored)."""
    return [str(p) for p in run.info.get("profile_order", [])] if run else []


def latest(records: list[Record]) -> Record | None:
    runs = [r for r in records if r.kind == "pipeline" and r.path == "provenance"]
    return max(runs, key=lambda r: r.created) if runs else None


def record_id(r: Record) -> str:
    """A short, stable id for a record (hash of its identity key): the report cites it next to every
    number and lists every id with its full key in its "Records" appendix."""
    return hashlib.sha256(json.dumps(r.key(), default=str).encode()).hexdigest()[:8]


def machine_line(info: dict) -> str:
    m = info.get("machine", {})
    simd = f", SIMD {' '.join(m['simd'])}" if m.get("simd") else ""
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores ({m.get('usable_cores', '?')} usable), "
            f"{m.get('os', '')} {m.get('arch', '')}{simd}, Python {m.get('python', '?')}")


def versions_line(info: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(info.get("versions", {}).items()))


def stamp(info: dict) -> str:
    """A compact fingerprint of the machine: latency is comparable only under the same one."""
    m = info.get("machine", {})
    return f"{m.get('cpu', '?')} x{m.get('cores', '?')}"

