"""Per-operator time profiles, each with the best tool the runtime offers (run inside the worker).

    .venv/bin/python -c "from pipeline import opprofile; print(opprofile.profile('m.tflite', 'litert', 1, [x]))"

- `.pte` (executorch): ExecuTorch's own event tracer. The PyPI runtime is built with it: load with
  `enable_etdump=True`, write the ETDump, read it with `executorch.devtools.Inspector`. XNNPACK
  delegates report their internal operators ("Convolution (NHWC, F32) IGEMM #1"); portable kernels
  report "native_call_<op>". When an ETRecord sidecar sits next to the .pte
  (`python -m export.etrecord_sidecar`), Inspector also maps each event to its aten op types.
- `.ptl` (lite_interpreter): `torch.profiler` around the lite-interpreter call (self CPU time of aten ops).
- `.tflite` (litert): the LiteRT Python interpreter has no per-operator timer and the peer benchmark
  (`litert-benchmark`, CompiledModel API) has no `--enable_op_profiling`. So: prefix timing. The
  flatbuffer is cut after operator k (outputs = that operator's outputs) for k = 1..n, each prefix is
  timed with the same interpreter, and operator k's time = t(k) - t(k-1) (clipped at 0). The first
  operator also carries the invoke() fixed cost. An estimate (noise and cross-operator fusion by
  XNNPACK blur it), labelled as such in the report.
The result is a list of {"op", "ms", "share"} (share of the summed operator time), largest first.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

TOP = 12          # operators kept per artifact
MAX_PREFIXES = 64  # tflite: above this many operators, neighbouring operators are timed as groups


def profile(path: str, runtime: str, threads: int, inputs: list, runs: int = 50) -> dict:
    fn = {"executorch": _executorch, "lite_interpreter": _torch_profiler, "litert": _tflite_prefix}.get(runtime)
    if fn is None:
        return {"method": "", "ops": [], "note": f"no per-operator profiler for runtime {runtime}"}
    return fn(path, threads, inputs, runs)


def _top(totals: dict[str, float], method: str, note: str = "") -> dict:
    total = sum(totals.values())
    ops = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP]
    return {"method": method, "total_ms": total, "note": note,
            "ops": [{"op": k, "ms": v, "share": v / total if total > 0 else 0.0} for k, v in ops]}


def _executorch(path, threads, inputs, runs) -> dict:
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib
    portable_lib._unsafe_reset_threadpool(int(threads))
    m = portable_lib._load_for_executorch(str(path), enable_etdump=True)  # no debug buffer: timings only
    args = tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs)
    for _ in range(runs):
        m.forward(args)
    with tempfile.TemporaryDirectory(prefix="mb-etdump-") as tmp:
        etdump = os.path.join(tmp, "run.etdp")
        m.write_etdump_result_to_file(etdump, os.path.join(tmp, "debug.bin"))
        sidecar = os.path.splitext(str(path))[0] + ".etrecord"   # export/etrecord_sidecar.py
        method = "ExecuTorch ETDump + Inspector (p50 per event)"
        inspector = None
        if os.path.exists(sidecar):
            try:
                inspector = Inspector(etdump_path=etdump, etrecord=sidecar)
                method += " + ETRecord sidecar (aten op types)"
            except Exception:  # noqa: BLE001 - a stale sidecar must not cost the profile
                inspector = None
        if inspector is None:
            inspector = Inspector(etdump_path=etdump)
        totals: dict[str, float] = {}
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue
            names = [e.name for e in block.events]
            for e in block.events:
                # wrappers: the method, each kernel call wrapper (OPERATOR_CALL holds native_call_*), and the delegate call when its inner operators are listed
                if e.name in ("Method::execute", "OPERATOR_CALL") or (e.name == "DELEGATE_CALL" and len(names) > 2):
                    continue
                if e.perf_data is not None:
                    types = sorted({str(t) for t in (e.op_types or [])})
                    label = f"{e.name} [{'/'.join(types)}]" if types else e.name
                    totals[label] = totals.get(label, 0.0) + float(e.perf_data.p50)
    return _top(totals, method)


def _torch_profiler(path, threads, inputs, runs) -> dict:
    import torch
    from torch.jit.mobile import _load_for_lite_interpreter
    from torch.profiler import ProfilerActivity, profile as tprofile
    torch.set_num_threads(int(threads))
    m = _load_for_lite_interpreter(str(path))
    args = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
    with torch.no_grad():
        for _ in range(5):
            m(*args)
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                m(*args)
    totals = {e.key: e.self_cpu_time_total / 1e3 / runs for e in prof.key_averages()
              if e.self_cpu_time_total > 0}
    return _top(totals, "torch.profiler self CPU time (mean per call)",
                "profiler overhead inflates small operators")


def _median_invoke(it, runs: int) -> float:
    for _ in range(5):
        it.invoke()
    lat = []
    deadline = time.perf_counter() + 0.2
    while len(lat) < runs or (time.perf_counter() < deadline and len(lat) < 10 * runs):
        t = time.perf_counter()
        it.invoke()
        lat.append(time.perf_counter() - t)
    return float(np.median(lat)) * 1e3


def _tflite_prefix(path, threads, inputs, runs) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb
    from pipeline.runtimes import _tflite_common as common
    model = fb.read_model(str(path))
    if len(model.subgraphs) != 1:
        return {"method": "", "ops": [], "note": "prefix timing needs a single-subgraph model"}
    sg = model.subgraphs[0]
    ops = list(sg.operators)
    outputs = list(sg.outputs)
    n = len(ops)
    step = max(1, -(-n // MAX_PREFIXES))
    cuts = list(range(step, n, step)) + [n]
    model.signatureDefs = []   # the signature names the full model's outputs
    names = [fb.opcode_to_name(model, op.opcodeIndex) for op in ops]
    prev, totals = 0.0, {}
    for k in cuts:
        sg.operators = ops[:k]
        sg.outputs = list(ops[k - 1].outputs) if k < n else outputs
        it = Interpreter(model_content=bytes(fb.convert_object_to_bytearray(model)), num_threads=int(threads))
        it.allocate_tensors()
        common._set_inputs(it, inputs)
        t = _median_invoke(it, runs)
        label = names[k - 1] if step == 1 else f"{names[k - 1]} (+{min(step, k) - 1} before)"
        totals[f"{label} #{k - 1}"] = max(0.0, t - prev)
        prev = max(prev, t)
    sg.operators, sg.outputs = ops, outputs
    return _top(totals, "LiteRT prefix timing: t(first k ops) - t(first k-1 ops), median invoke",
                "estimate; the first operator carries invoke()'s fixed cost")
