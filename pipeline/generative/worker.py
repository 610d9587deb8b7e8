"""The generation worker: one item = one generative artifact in one runtime under one profile, or the
reference of one source model. Through the worker protocol (`pipeline/workers.py`): a native crash,
a hang or the memory ceiling costs only the item it happened in.

    python -m pipeline.generative.worker JOB.json

Artifact item: {"kind": "artifact", "artifact", "facts" (info["generation"]), "threads", "cpus",
"mem_limit_mb", "workload" (.npz), "teacher" (the reference .npz: its greedy tokens), "outputs" (.npz
to write), "full" (the parity set: held-out perplexity too; the first profile only)}.
Probe item: the same as an artifact item with "kind": "probe" and "probe" (one of `generate.probes`).
Reference item: {"kind": "reference", "reference": {"kind", "path"}, "workload", "outputs"}.
Each item sets its own profile (affinity, address-space ceiling) and its peak RSS is its own.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np

from pipeline.bench.worker import _apply_profile, _release, _status_kb
from pipeline.workers import serve


def handle(item: dict, params: dict) -> dict:
    try:
        return {"reference": reference_item, "artifact": artifact_item, "probe": probe_item}[item["kind"]](item)
    finally:
        _release()


def reference_item(item: dict) -> dict:
    from pipeline.generative import reference
    from pipeline.generative.generate import Workload
    t0 = time.perf_counter()
    fwd = reference.load(item["reference"], int(item.get("threads", 1)))
    arrays = reference.compute(fwd, Workload.load(item["workload"]))
    _save(item["outputs"], arrays)
    return {"status": "ok", "metrics": {"time_reference_s": time.perf_counter() - t0}}


def _open(item: dict):
    """The item's profile applied, the runtime imported (before the clocks and the memory baseline: an
    app pays it once), the artifact loaded -> (session, adapter, load seconds, baseline RSS kB)."""
    from pipeline import runtimes
    from pipeline.generative import open_session, session_class
    from pipeline.generative.session import LMFacts
    _apply_profile(item)
    facts = LMFacts.of(item["facts"])
    adapter = runtimes.get(session_class(facts.convention).RUNTIME)
    adapter.import_runtime()
    rss_base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        s = open_session(item["artifact"], facts, int(item["threads"]))
    except Exception as e:  # noqa: BLE001 - name the file and the runtime in the one-line error
        raise RuntimeError(f"{os.path.basename(item['artifact'])}: {adapter.__class__.__name__} cannot load it: "
                           f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}") from None
    return s, adapter, time.perf_counter() - t0, rss_base


def _workload(item: dict):
    from pipeline.generative.generate import Workload
    w = Workload.load(item["workload"])
    if item.get("probe_lengths") is not None:   # this artifact's own bounds (the workload has every artifact's)
        w = dataclasses.replace(w, probe_lengths=tuple(item["probe_lengths"]))
    return w


def artifact_item(item: dict) -> dict:
    from pipeline.generative import generate
    s, adapter, load_s, rss_base = _open(item)
    times: dict[str, float] = {"time_load_s": load_s}
    w = _workload(item)
    with np.load(item["teacher"]) as z:
        teacher = z["tokens"]
    t0 = time.perf_counter()
    out = generate.run_prompts(s, w, teacher)
    times["time_generate_s"] = time.perf_counter() - t0
    decode = out["decode_s"].reshape(-1)
    metrics = {"load_ms": load_s * 1e3, "ttft_ms": float(np.median(out["ttft_s"])) * 1e3,
               "ttft_cold_ms": out["cold_ttft_s"] * 1e3,
               "decode_ms_per_token": float(np.median(decode)) * 1e3,
               "decode_tokens_per_s": float(len(decode) / decode.sum()) if decode.sum() > 0 else float("nan"),
               "prompt_tokens": float(max(w.prompt_lengths)), "decode_steps": float(w.steps),
               "prompts": float(len(w.prompts)), "decode_tokens_timed": float(len(decode))}
    arrays = {"logits": out["logits"]}
    info = {"session": s.describe(), "ttft_ms_per_prompt": [round(v * 1e3, 4) for v in out["ttft_s"]]}
    if item.get("full") and len(w.heldout):
        t0 = time.perf_counter()
        arrays["nll"] = generate.heldout(s, w)
        times["time_quality_s"] = time.perf_counter() - t0
    metrics["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    metrics["peak_rss_above_baseline_mb"] = (_status_kb("VmHWM") - rss_base) / 1024
    info["runtime_version"] = adapter.version()
    _save(item["outputs"], arrays)
    return {"status": "ok", "metrics": {**metrics, **times}, "info": info}


def probe_item(item: dict) -> dict:
    """One bound probe (generate.probe) in its own item: a native crash past a bound costs only it."""
    from pipeline.generative import generate
    s, _, _, _ = _open(item)
    t0 = time.perf_counter()
    res = generate.probe(s, _workload(item), item["probe"])
    _save(item["outputs"], {"logits": res.pop("logits", np.zeros(s.facts.vocab, np.float32))})
    return {"status": "ok", "probe": res, "metrics": {"time_probe_s": time.perf_counter() - t0}}


def _save(path: str, arrays: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(serve(handle))
