"""Per-operator time profiles, each with the best tool the runtime offers (run inside the worker).

    .venv/bin/python -c "from pipeline import opprofile; print(opprofile.profile('m.tflite', 'litert', 1, [x]))"

- `.pte` (executorch): ExecuTorch's own event tracer. The PyPI runtime is built with it: load with
  `enable_etdump=True`, write the ETDump, read it with `executorch.devtools.Inspector`. XNNPACK
  delegates report their internal operators ("Convolution (NHWC, F32) IGEMM #1"); portable kernels
  report "native_call_<op>". When an ETRecord sidecar sits next to the .pte
  (`python -m pipeline export --etrecord`), Inspector also maps each event to its aten op types.
- `.ptl` (lite_interpreter): `torch.profiler` around the lite-interpreter call (self CPU time of aten ops).
- `.tflite` (litert): the LiteRT Python interpreter has no per-operator timer and the peer benchmark
  (`litert-benchmark`, CompiledModel API) has no `--enable_op_profiling`. So each operator is cut out
  of the flatbuffer into a one-operator model (non-constant inputs become model inputs, zeros), timed
  alone with the same interpreter and threads, minus invoke()'s fixed cost (the one-op trivial model);
  a PAD read only by the next convolution is timed with it (XNNPACK folds it into the convolution).
  An estimate: alone, an operator loses XNNPACK's cross-operator fusion and shares no cache with its
  neighbours; the sum is read beside the whole model's p50 in the report. (Prefix timing, t(first k
  ops) - t(first k-1), was tried first: a prefix that ends in a PAD is not delegated the way the whole
  graph is, so it charged mobilenet_v2's first PAD with more than the whole model's time.)
The result is a list of {"op", "ms", "share"} (share of the summed operator time), largest first;
for `.tflite` each entry also names its `node` (operator index in subgraph 0) and `node_ms` holds every
timed operator's time by that index (the graph view's overlay, `pipeline/explore/`): a PAD timed with
its convolution counts on the convolution, a DEQUANTIZE of constant weights has no entry.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

TOP = 12          # operators kept per artifact
FUSES_PAD = ("CONV_2D", "DEPTHWISE_CONV_2D")


def profile(path: str, runtime: str, threads: int, inputs: list, runs: int = 50) -> dict:
    fn = {"executorch": _executorch, "lite_interpreter": _torch_profiler, "litert": _tflite_isolated}.get(runtime)
    if fn is None:
        return {"method": "", "ops": [], "note": f"no per-operator profiler for runtime {runtime}"}
    return fn(path, threads, inputs, runs)


def _top(totals: dict[str, float], method: str, note: str = "", nodes: dict[str, int] | None = None) -> dict:
    """The TOP largest of `totals` (label -> ms); with `nodes` (label -> operator index) each entry names
    its node and `node_ms` keeps every operator's time, not only the top ones."""
    total = sum(totals.values())
    ops = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP]
    out = {"method": method, "total_ms": total, "note": note,
           "ops": [{"op": k, "ms": v, "share": v / total if total > 0 else 0.0} for k, v in ops]}
    if nodes is not None:
        for o in out["ops"]:
            o["node"] = nodes[o["op"]]
        out["node_ms"] = {str(nodes[k]): v for k, v in totals.items()}
    return out


def etdump_inspector(path, threads: int, inputs: list, runs: int, etrecord: str = ""):
    """Run a .pte `runs` times under ExecuTorch's event tracer and read the ETDump with Inspector:
    -> (inspector, whether the ETRecord was used). An ETRecord that does not fit the program is left out:
    it names operators, and must not cost the timings."""
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
        if etrecord and os.path.exists(etrecord):
            try:
                return Inspector(etdump_path=etdump, etrecord=etrecord), True
            except Exception:  # noqa: BLE001 - a stale sidecar must not cost the profile
                pass
        return Inspector(etdump_path=etdump), False


def _executorch(path, threads, inputs, runs) -> dict:
    sidecar = os.path.splitext(str(path))[0] + ".etrecord"   # export/run.py: etrecord_file
    inspector, named = etdump_inspector(path, threads, inputs, runs, etrecord=sidecar)
    method = "ExecuTorch ETDump + Inspector (p50 per event)" + (" + ETRecord sidecar (aten op types)" if named else "")
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
    deadline = time.perf_counter() + 0.1
    while len(lat) < runs or (time.perf_counter() < deadline and len(lat) < 10 * runs):
        t = time.perf_counter()
        it.invoke()
        lat.append(time.perf_counter() - t)
    return float(np.median(lat)) * 1e3


def _tflite_isolated(path, threads, inputs, runs) -> dict:
    """Each operator cut out into a one-operator model (its non-constant inputs become the model's
    inputs, zeros), timed alone with the same interpreter and threads, minus the invoke() fixed cost
    of the one-op trivial model. Operators with the same opcode, options and tensor shapes/types are
    timed once (an unrolled RNN repeats one step many times)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb
    model = fb.read_model(str(path))
    if len(model.subgraphs) != 1:
        return {"method": "", "ops": [], "note": "per-operator timing needs a single-subgraph model"}
    sg = model.subgraphs[0]
    ops, graph_inputs, graph_outputs = list(sg.operators), list(sg.inputs), list(sg.outputs)
    model.signatureDefs = []   # the signature names the full model's inputs and outputs
    const = {i for i, t in enumerate(sg.tensors)
             if t.buffer > 0 and t.buffer < len(model.buffers) and model.buffers[t.buffer].data is not None}

    def median_of(op_list, ins, outs) -> float:
        sg.operators, sg.inputs, sg.outputs = op_list, ins, outs
        it = Interpreter(model_content=bytes(fb.convert_object_to_bytearray(model)), num_threads=int(threads))
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        return _median_invoke(it, runs)

    try:
        # invoke()'s fixed cost, paid once per model but here once per operator: the trivial one-op model's
        trivial = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "trivial.tflite")
        t_fix = 0.0
        if os.path.exists(trivial):
            it = Interpreter(model_path=trivial, num_threads=int(threads))
            it.allocate_tensors()
            t_fix = _median_invoke(it, runs)
        seen: dict[tuple, float] = {}
        totals: dict[str, float] = {}
        node_of: dict[str, int] = {}   # label -> the operator index the time is shown on
        names = [fb.opcode_to_name(model, op.opcodeIndex) for op in ops]
        users = {}
        for op in ops:
            for i in op.inputs:
                users[i] = users.get(i, 0) + 1
        # DEQUANTIZE of a constant (fp16 weights): XNNPACK converts it once at load and a DEQUANTIZE cut
        # out alone fails to set up ("failed to setup XNNPACK runtime"): it goes with each consumer, as
        # in the full model, and is not timed on its own
        deq_const = {op.outputs[0]: op for j, op in enumerate(ops)
                     if names[j] == "DEQUANTIZE" and len(op.inputs) == 1 and op.inputs[0] in const}
        k = 0
        while k < len(ops):
            if names[k] == "DEQUANTIZE" and ops[k].outputs[0] in deq_const:
                k += 1
                continue
            # XNNPACK folds an explicit PAD into the convolution that alone reads it: time them as one
            group = [k]
            if (names[k] == "PAD" and k + 1 < len(ops) and names[k + 1] in FUSES_PAD
                    and ops[k].outputs[0] in ops[k + 1].inputs and users.get(ops[k].outputs[0]) == 1):
                group = [k, k + 1]
            grp = [ops[j] for j in group]
            grp = [deq_const[i] for op in grp for i in op.inputs if i in deq_const] + grp
            made = {o for op in grp for o in op.outputs}
            ins = [i for op in grp for i in op.inputs if i >= 0 and i not in const and i not in made]
            sig = tuple((op.opcodeIndex, repr(vars(op.builtinOptions)) if op.builtinOptions is not None else "",
                         tuple((tuple(sg.tensors[i].shape), sg.tensors[i].type) for i in op.inputs if i >= 0),
                         tuple(i in const for i in op.inputs)) for op in grp)
            if sig not in seen:
                seen[sig] = max(0.0, median_of(grp, ins, list(grp[-1].outputs)) - t_fix)
            label = "+".join(names[j] for j in group) + f" #{k}"
            totals[label] = seen[sig]
            node_of[label] = group[-1]   # a PAD's time goes with the convolution that absorbs it
            k += len(group)
    finally:
        sg.operators, sg.inputs, sg.outputs = ops, graph_inputs, graph_outputs
    return _top(totals, "LiteRT per-operator timing: each operator alone as a one-op model, median invoke "
                "minus the one-op trivial model's",
                f"estimate: operators timed alone (no cross-operator fusion); fixed cost {t_fix * 1e3:.1f} us "
                "subtracted per operator" + ("; DEQUANTIZE of constant weights timed with its consumer"
                                             if deq_const else ""), nodes=node_of)
