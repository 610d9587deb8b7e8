"""Delegation coverage of one artifact: share of operators AND of measured time outside the delegate.

    .venv/bin/python -c "from pipeline import quant_delegation as d; import numpy as np; \
        print(d.coverage('artifacts/digits_cnn/keras_tw__tflite_int8.tflite', [np.zeros((1,8,8,1),'f')]))"

- `.pte` (ExecuTorch runtime, 1 thread): operator counts come from `get_delegation_info` at export
  time (the caller passes them). Time from ExecuTorch's own ETDump (p50 per event over `runs` calls):
  outside = `Method::execute` - sum of `DELEGATE_CALL`, i.e. portable kernels plus the runtime's own
  dispatch between delegate calls. Measured, not estimated.
- `.tflite` (LiteRT, 1 thread, default XNNPACK delegate): operator counts from the interpreter's node
  list (nodes absorbed by a DELEGATE node vs the rest). Time is an ESTIMATE by prefix timing
  (as `pipeline/bench/opprofile.py`): the model is cut after each run of consecutive operators with the same
  delegation status; a run's time = t(model up to its end) - t(model up to the previous run's end).
  All delegated or none delegated needs no cut: the share is exactly 0 or 1.
"""
from __future__ import annotations

import numpy as np

RUNS = 30


def coverage(path, inputs: list, ops: dict | None = None, runs: int = RUNS) -> dict:
    """{delegated_ops, non_delegated_ops, ops_outside_share, time_outside_share, total_ms, method,
    time_kind, not_delegated}."""
    path = str(path)
    if path.endswith(".pte"):
        return _pte(path, inputs, ops or {}, runs)
    if path.endswith(".tflite"):
        return _tflite(path, inputs, runs)
    raise ValueError(f"{path}: no delegation coverage for this format (only .pte, .tflite)")


def _shares(d: float, n: float) -> float:
    return n / (d + n) if d + n else float("nan")


def _pte(path, inputs, ops, runs) -> dict:
    from pipeline.bench.opprofile import etdump_inspector
    inspector, _ = etdump_inspector(path, 1, inputs, runs)
    total = delegate = 0.0
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for e in block.events:
            if e.perf_data is None:
                continue
            if e.name == "Method::execute":
                total += float(e.perf_data.p50)
            elif e.name == "DELEGATE_CALL":
                delegate += float(e.perf_data.p50)
    d, n = float(ops.get("delegated_ops", np.nan)), float(ops.get("non_delegated_ops", np.nan))
    return {"delegated_ops": d, "non_delegated_ops": n, "ops_outside_share": _shares(d, n),
            "time_outside_share": max(0.0, total - delegate) / total if total > 0 else float("nan"),
            "total_ms": total, "not_delegated": list(ops.get("not_delegated", [])),
            "method": "ETDump p50: (Method::execute - DELEGATE_CALL) / Method::execute", "time_kind": "measured"}


def _tflite(path, inputs, runs) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb
    from pipeline.bench.opprofile import _median_invoke
    from pipeline.runtimes import _tflite_common as common
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    details = it._get_ops_details()  # noqa: SLF001 - the only API listing nodes after delegation
    inside = common.delegated_nodes(details)
    original = [o for o in details if o["op_name"] != "DELEGATE"]
    n_ops = len(original)
    outside = [o["index"] not in inside for o in sorted(original, key=lambda o: o["index"])]
    base = {"delegated_ops": float(n_ops - sum(outside)), "non_delegated_ops": float(sum(outside)),
            "ops_outside_share": _shares(n_ops - sum(outside), sum(outside)),
            "not_delegated": sorted({o["op_name"] for o in original if o["index"] not in inside})}
    common._set_inputs(it, inputs)
    total = _median_invoke(it, runs)
    if not any(outside) or all(outside):
        return {**base, "time_outside_share": float(all(outside)), "total_ms": total,
                "method": "every operator on one side of the delegate: share is exact", "time_kind": "exact"}
    model = fb.read_model(path)
    if len(model.subgraphs) != 1:
        return {**base, "time_outside_share": float("nan"), "total_ms": total,
                "method": "prefix timing needs a single-subgraph model", "time_kind": "none"}
    sg = model.subgraphs[0]
    ops, outputs = list(sg.operators), list(sg.outputs)
    model.signatureDefs = []   # the signature names the full model's outputs
    ends = [k for k in range(1, n_ops + 1) if k == n_ops or outside[k] != outside[k - 1]]
    prev, t_out, t_all = 0.0, 0.0, 0.0
    for k in ends:
        sg.operators = ops[:k]
        sg.outputs = list(ops[k - 1].outputs) if k < n_ops else outputs
        pit = Interpreter(model_content=bytes(fb.convert_object_to_bytearray(model)), num_threads=1)
        pit.allocate_tensors()
        common._set_inputs(pit, inputs)
        t = _median_invoke(pit, runs)
        seg = max(0.0, t - prev)
        prev = max(prev, t)
        t_all += seg
        if outside[k - 1]:
            t_out += seg
    return {**base, "time_outside_share": t_out / t_all if t_all > 0 else float("nan"), "total_ms": total,
            "method": f"LiteRT prefix timing over {len(ends)} same-status runs of operators (estimate; the "
                      "first run carries invoke()'s fixed cost)", "time_kind": "estimate"}
