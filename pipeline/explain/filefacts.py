"""What a model file computes: its operators in order and the small constants it holds, read from the
file itself (never run), so an explanation can point at the operator or the value behind a mismatch.

    from pipeline.explain import filefacts
    f = filefacts.of("artifacts/probes/isnan_isinf/keras__tflite_fp32.tflite", "tflite")
    f["operators"]      # ["ABS", "EQUAL", "NOT_EQUAL", "LOGICAL_OR", "CAST"]
    f["constants"]      # [{"name": "functional_1_1/IsInf", "dtype": "float32", "shape": [], "values":
                        #   [3.4028235e+38], "flags": ["flt_max"], "used_by": [{"op": "EQUAL", "with": ["ABS"]}]}]

Readers: `.tflite` and `.pte` through the project's bounds-checked flatbuffer reader
(`pipeline/filecheck/flatbuf.py`; TFLite operator names from `ai_edge_litert.schema_py_generated`, the
ExecuTorch program per executorch's `program.fbs`, an XNNPACK delegate's nodes per the installed
`backends/xnnpack/serialization/schema.fbs`); `.onnx` through the `onnx` package (nodes, initializers
and Constant nodes; external data never loaded). Other formats: no reader, said so.

Bounded: at most MAX_OPS operator names, constants of at most SMALL_VALUES elements (MAX_CONSTANTS of
them, the flagged ones first), and the file is mapped, not read whole. A corrupt file gives
{"error": ...}, never an exception: an explanation without its file facts is still an explanation.
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np

from pipeline.explain.evidence import FLT_MAX, FLT_TINY, FP16_MAX, num

MAX_OPS = 64
SMALL_VALUES = 16
MAX_CONSTANTS = 24
MAX_ARGS = 64           # inputs of one operator looked at
MAX_DELEGATES = 8       # delegates described (an unrolled GRU has one per step)
COMPARISONS = {"EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL",   # TFLite
               "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual",              # ONNX
               "aten::eq", "aten::ne", "aten::gt", "aten::ge", "aten::lt", "aten::le"}   # ExecuTorch


FORMATS = ("tflite", "pte", "onnx")


def of(path, fmt: str) -> dict:
    """The file's facts: {"format", "reader", "operators", "n_operators", "constants", "n_constants"}
    (+ "delegates" for a .pte), or {"format", "error"} when the file cannot be read (or is of a format
    not in FORMATS)."""
    if fmt not in FORMATS:
        return {"format": fmt, "error": f"no reader for .{fmt} files here"}
    try:
        if fmt == "onnx":
            facts = _onnx(Path(path))
        else:
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                facts = (_tflite if fmt == "tflite" else _pte)(data)
    except Exception as e:  # noqa: BLE001 - a file we cannot read is a fact, not a crash
        return {"format": fmt, "error": f"{type(e).__name__}: {str(e)[:200]}"}
    return {"format": fmt, **facts}


def flags(values: np.ndarray, dtype: str) -> list[str]:
    """What is notable in a constant's values: infinities and NaN, ±FLT_MAX (an infinity a converter
    saturated), the float16 maximum, denormals."""
    v = values.astype(np.float64).reshape(-1)
    out = []
    if np.isposinf(v).any() or np.isneginf(v).any():
        out.append("inf")
    if np.isnan(v).any():
        out.append("nan")
    if (np.abs(v[np.isfinite(v)]) == FLT_MAX).any():
        out.append("flt_max")
    if dtype == "float16" and (np.abs(v[np.isfinite(v)]) == FP16_MAX).any():
        out.append("fp16_max")
    if np.issubdtype(values.dtype, np.floating) and ((v != 0) & (np.abs(v) < FLT_TINY)).any():
        out.append("denormal")
    return out


class _Constants:
    """Small constants as they are found, the flagged ones kept first, with who consumes them."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.total = 0

    def add(self, key, name: str, dtype: str, shape: list[int], values: np.ndarray) -> None:
        self.total += 1
        c = {"name": name, "dtype": dtype, "shape": [int(s) for s in shape],
             "values": [num(v) for v in values.reshape(-1)[:8]], "flags": flags(values, dtype), "_key": key}
        self.items.append(c)

    def keys(self) -> set:
        return {c["_key"] for c in self.items}

    def done(self, users: dict) -> list[dict]:
        kept = sorted(self.items, key=lambda c: not c["flags"])[:MAX_CONSTANTS]
        for c in kept:
            c["used_by"] = users.get(c.pop("_key"), [])[:4]
        return kept


# operators that only change a constant's type on its way to its user (a float16 file's DEQUANTIZE)
PASS_THROUGH = {"DEQUANTIZE", "CAST", "Cast", "DequantizeLinear", "dim_order_ops::_to_dim_order_copy.out",
                "aten::_to_copy.out"}


def _users(ops: list[tuple[str, list, list]], keys: set) -> dict:
    """constant key -> [{"op", "with": ops producing the op's other inputs, "via": a type change on the
    way}] (the neighbourhood a rule reads: a FLT_MAX constant compared by EQUAL with the output of ABS)."""
    producer, consumers = {}, {}
    for i, (name, ins, outs) in enumerate(ops):
        for t in outs:
            producer.setdefault(t, name)
        for t in ins:
            consumers.setdefault(t, []).append(i)
    users: dict = {}
    for key in keys:
        for i in consumers.get(key, [])[:8]:
            name, ins, outs = ops[i]
            via, t = "", key
            if name in PASS_THROUGH and outs and outs[0] != key and consumers.get(outs[0]):
                via, t = name, outs[0]
                i = consumers[t][0]
                name, ins, _ = ops[i]
            others = sorted({producer[u] for u in ins if u != t and u in producer})
            users.setdefault(key, []).append({"op": name, "with": others, **({"via": via} if via else {})})
    return users


# ---------------------------------------------------------------- .tflite

_TFLITE_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
                  9: "int8", 10: "float64"}


def _tflite_names() -> dict[int, str]:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return {}
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _int_vector(t, slot: int, what: str) -> list[int]:
    start, n = t.vector(slot, 4, what)
    n = min(n, MAX_ARGS)
    return list(struct.unpack_from(f"<{n}i", t.b.d, start)) if n else []


def _tflite(data) -> dict:
    from pipeline.filecheck import flatbuf
    model = flatbuf.root(data, "model")
    names = _tflite_names()
    codes = []
    for i, c in enumerate(model.table_list(1, "operator_codes")):
        code = max(c.scalar(0, "b"), c.scalar(3, "i"))      # deprecated_builtin_code, builtin_code
        custom = c.text(1, f"operator_codes[{i}].custom_code")
        codes.append(custom or names.get(code, f"BUILTIN_{code}"))
    buffers = model.table_list(4, "buffers")
    consts = _Constants()
    ops_all, n_ops, io = [], 0, {}
    for s, sg in enumerate(model.table_list(2, "subgraphs")):
        tensors = sg.table_list(0, f"subgraphs[{s}].tensors")
        for t, ten in enumerate(tensors):
            dtype = _TFLITE_DTYPES.get(ten.scalar(1, "b"))
            b = ten.scalar(2, "I")
            if dtype is None or not 0 < b < len(buffers):
                continue
            raw = _tflite_buffer(buffers[b], data)
            item = np.dtype(dtype).itemsize
            if not raw or len(raw) > SMALL_VALUES * item or len(raw) % item:
                continue
            shape = _int_vector(ten, 0, "shape")
            consts.add((s, t), ten.text(3, "name"), dtype, shape,
                       np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")))
        for o, op in enumerate(sg.table_list(3, f"subgraphs[{s}].operators")):
            idx = op.scalar(0, "I")
            name = codes[idx] if idx < len(codes) else f"opcode {idx}"
            ins = [(s, i) for i in _int_vector(op, 1, "inputs") if i >= 0]
            outs = [(s, i) for i in _int_vector(op, 2, "outputs") if i >= 0]
            ops_all.append((name, ins, outs))
            n_ops += 1
        if s == 0:
            io = _tflite_io(sg, tensors, ops_all)
    return {"reader": "TFLite flatbuffer (pipeline/filecheck/flatbuf.py, schema v3)",
            "operators": [o[0] for o in ops_all[:MAX_OPS]], "n_operators": n_ops,
            "constants": consts.done(_users(ops_all, consts.keys())), "n_constants": consts.total, **io}


_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def _quant_range(ten) -> list | None:
    """The float range an integer tensor can represent: scale x (q - zero point) over its integers."""
    dtype = _TFLITE_DTYPES.get(ten.scalar(1, "b"))
    q = ten.table(4, "quantization")
    if dtype not in _QRANGE or q is None:
        return None
    s_start, n_s = q.vector(2, 4, "scale")
    z_start, n_z = q.vector(3, 8, "zero_point")
    if n_s != 1:                     # per-channel (weights): no single range
        return None
    scale = struct.unpack_from("<f", q.b.d, s_start)[0]
    zp = struct.unpack_from("<q", q.b.d, z_start)[0] if n_z else 0
    lo, hi = _QRANGE[dtype]
    return [num(scale * (lo - zp)), num(scale * (hi - zp))]


def _tflite_io(sg, tensors, ops) -> dict:
    """The model's inputs and outputs with the float range they can carry once quantized: the tensor's
    own, or for a float input (output) the QUANTIZE after it (the DEQUANTIZE before it)."""
    out = {}
    for key, slot in (("inputs", 1), ("outputs", 2)):
        items = []
        for t in _int_vector(sg, slot, key)[:8]:
            if not 0 <= t < len(tensors):
                continue
            ten = tensors[t]
            rng = _quant_range(ten)
            for name, ins, outs in ops:
                if rng is not None:
                    break
                if key == "inputs" and name == "QUANTIZE" and ins[:1] == [(0, t)] and outs:
                    rng = _quant_range(tensors[outs[0][1]])
                if key == "outputs" and name == "DEQUANTIZE" and outs[:1] == [(0, t)] and ins:
                    rng = _quant_range(tensors[ins[0][1]])
            items.append({"name": ten.text(3, "name"), "dtype": _TFLITE_DTYPES.get(ten.scalar(1, "b"), "?"),
                          **({"quantized_range": rng} if rng else {})})
        out[key] = items
    return out


def _tflite_buffer(buf, data) -> bytes:
    """A buffer's bytes when it is small (inside the flatbuffer, or after it for files > 2 GB); b"" else."""
    limit = 8 * SMALL_VALUES
    start, n = buf.vector(0, 1, "buffer data")
    if n:
        return bytes(data[start:start + n]) if n <= limit else b""
    off, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
    if off > 1 and 0 < size <= limit and off + size <= len(data):
        return bytes(data[off:off + size])
    return b""


# ---------------------------------------------------------------- .pte (ExecuTorch program)

_ET_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
              7: "float64", 11: "bool"}
_KERNEL_INT, _KERNEL_DOUBLE, _KERNEL_TENSOR = 2, 4, 5            # KernelTypes (program.fbs)
_INSTR_KERNEL, _INSTR_DELEGATE = 1, 2                            # InstructionArguments


def _pte(data) -> dict:
    from pipeline.filecheck import flatbuf
    prog = flatbuf._pte_root(data)
    header = _pte_segments_base(data)
    segments = prog.table_list(4, "segments")
    const_seg = prog.table(5, "constant_segment")
    const_offsets = []
    if const_seg is not None:
        start, n = const_seg.vector(1, 8, "constant_segment.offsets")
        const_offsets = struct.unpack_from(f"<{n}Q", data, start) if n else ()
        seg_index = const_seg.scalar(0, "I")
    inline = prog.table_list(2, "constant_buffer")
    consts = _Constants()
    ops_all, delegates, n_ops, n_delegates = [], [], 0, 0
    for p, plan in enumerate(prog.table_list(1, "execution_plan")):
        opnames = [_et_op(op) for op in plan.table_list(6, "operators")]
        dels = plan.table_list(7, "delegates")
        values = plan.table_list(2, "values")
        for v_i, ev in enumerate(values):
            kind, val = ev.scalar(0, "B"), ev.table(1, f"values[{v_i}]")
            if val is None:
                continue
            if kind == _KERNEL_DOUBLE:
                consts.add((p, v_i), f"scalar value {v_i}", "float64", [], np.array([val.scalar(0, "d")]))
            elif kind == _KERNEL_TENSOR:
                raw, dtype, shape = _pte_tensor(val, data, inline, const_offsets, segments, header,
                                                seg_index if const_seg is not None else 0)
                if raw is not None:
                    consts.add((p, v_i), f"constant tensor value {v_i}", dtype, shape,
                               np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")))
        for c, chain in enumerate(plan.table_list(5, "chains")):
            for i, ins in enumerate(chain.table_list(2, f"chains[{c}].instructions")):
                kind, args = ins.scalar(0, "B"), ins.table(1, f"instructions[{i}]")
                if args is None:
                    continue
                if kind == _INSTR_KERNEL:
                    idx = args.scalar(0, "i")
                    name = opnames[idx] if 0 <= idx < len(opnames) else f"operator {idx}"
                elif kind == _INSTR_DELEGATE:
                    idx = args.scalar(0, "i")
                    name = f"delegate:{dels[idx].text(0, 'delegate id')}" if 0 <= idx < len(dels) else "delegate"
                else:
                    continue
                argv = [(p, a) for a in _int_vector(args, 1, "args")]
                ops_all.append((name, argv[:-1], argv[-1:]))     # out variants: the last argument is the output
                n_ops += 1
        for d_i, d in enumerate(dels):
            if len(delegates) < MAX_DELEGATES:
                delegates.append(_delegate(d, data, prog, segments, header, d_i))
            n_delegates += 1
    io = {}
    xnn = [d for d in delegates if d["id"] == "XnnpackBackend"]
    if len(xnn) == 1 and ops_all:   # the program's boundary is the delegate's when it runs first (last)
        for key, end in (("inputs", ops_all[0]), ("outputs", ops_all[-1])):
            if end[0] == "delegate:XnnpackBackend" and xnn[0].get(key):
                io[key] = xnn[0][key]
    return {"reader": "ExecuTorch program flatbuffer (executorch program.fbs via pipeline/filecheck/flatbuf.py)",
            "operators": [o[0] for o in ops_all[:MAX_OPS]], "n_operators": n_ops,
            "constants": consts.done(_users(ops_all, consts.keys())), "n_constants": consts.total,
            "delegates": delegates, "n_delegates": n_delegates, **io}


def _et_op(op) -> str:
    name, overload = op.text(0, "operator name"), op.text(1, "operator overload")
    return name if not overload else f"{name}.{overload}"


def _pte_segments_base(data) -> int:
    """Where the segments start (the extended header 'eh00' at byte 8), 0 without one."""
    if len(data) >= 32 and bytes(data[8:12]) == b"eh00":
        return struct.unpack_from("<Q", data, 24)[0]
    return 0


def _pte_tensor(t, data, inline, const_offsets, segments, base: int, seg_index: int):
    """(bytes, dtype, shape) of a small constant tensor; (None, ...) for anything else."""
    idx = t.scalar(5, "I")
    dtype = _ET_DTYPES.get(t.scalar(0, "b"))
    if not idx or dtype is None or t.table(6, "allocation_info") is not None:
        return None, dtype, []
    shape = _int_vector(t, 2, "sizes")
    n = int(np.prod(shape)) if shape else 1
    if n > SMALL_VALUES:
        return None, dtype, shape
    size = n * np.dtype(dtype).itemsize
    if inline and idx < len(inline):
        start, length = inline[idx].vector(0, 1, "constant_buffer storage")
        return (bytes(data[start:start + size]) if length >= size else None), dtype, shape
    if idx < len(const_offsets) and seg_index < len(segments):
        at = base + segments[seg_index].scalar(0, "Q") + const_offsets[idx]
        return (bytes(data[at:at + size]) if at + size <= len(data) else None), dtype, shape
    return None, dtype, shape


def _delegate(d, data, prog, segments, base: int, i: int) -> dict:
    """A delegate: its backend id, and for XNNPACK the nodes of its graph in order."""
    out = {"id": d.text(0, "delegate id")}
    ref = d.table(1, "processed")
    if ref is None:
        return out
    loc, idx = ref.scalar(0, "b"), ref.scalar(1, "I")
    payload = None
    if loc == 0:
        inline = prog.table_list(3, "backend_delegate_data")
        if idx < len(inline):
            start, n = inline[idx].vector(0, 1, "delegate data")
            payload = memoryview(data)[start:start + n]
    elif loc == 1 and idx < len(segments):
        at = base + segments[idx].scalar(0, "Q")
        payload = memoryview(data)[at:at + segments[idx].scalar(1, "Q")]
    if payload is not None and out["id"] == "XnnpackBackend":
        out.update(_xnnpack(payload))
    return out


def _xnnpack_node_names() -> list[str]:
    """XNodeUnion's members in order, from the installed executorch's own schema (index 1 = first)."""
    import importlib.util
    import re
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        return []
    f = Path(spec.submodule_search_locations[0]) / "backends/xnnpack/serialization/schema.fbs"
    try:
        body = re.search(r"union XNodeUnion\s*{([^}]*)}", f.read_text()).group(1)
    except (OSError, AttributeError):
        return []
    return [m.split(":")[0].strip() for m in re.sub(r"//[^\n]*", "", body).split(",") if m.strip()]


def _xnnpack(payload) -> dict:
    """The XNNPACK graph inside a delegate payload ('XH00' header, then an XNNGraph flatbuffer)."""
    from pipeline.filecheck import flatbuf
    if len(payload) < 30 or bytes(payload[4:8]) != b"XH00":
        return {}
    fb_off, fb_size = struct.unpack_from("<II", payload, 10)
    if fb_off + fb_size > len(payload):
        return {"error": "XNNPACK payload: flatbuffer outside the payload"}
    graph = flatbuf.root(payload[fb_off:fb_off + fb_size], "XNNGraph")
    names = _xnnpack_node_names()
    nodes, converts = [], []
    for node in graph.table_list(1, "xnodes"):
        k = node.scalar(0, "B")
        nodes.append(names[k - 1] if 0 < k <= len(names) else f"xnode {k}")
        body = node.table(1, "xnode")
        if nodes[-1] == "XNNConvert" and body is not None:          # _XNNNode1x1: input_id, output_id
            converts.append((body.scalar(0, "I"), body.scalar(1, "I")))
    ranges = _xnnpack_ranges(graph)
    io = {}
    for key, slot in (("inputs", 4), ("outputs", 5)):
        items = []
        for i, vid in enumerate(_int_vector(graph, slot, key)[:8]):
            # an fp32 boundary value is quantized by the Convert after it (before it, for an output)
            rng = ranges.get(vid) or next((ranges.get(o if key == "inputs" else a) for a, o in converts
                                           if (a if key == "inputs" else o) == vid), None)
            items.append({"name": f"XNNPACK {key[:-1]} {i}", **({"quantized_range": rng} if rng else {})})
        if any("quantized_range" in t for t in items):     # a float graph's boundary says nothing more
            io[key] = items
    return {"nodes": nodes[:MAX_OPS], "n_nodes": len(nodes), **io}


_XNN_QRANGE = {3: (-128, 127), 4: (0, 255)}       # xnn_datatype_qint8, quint8
_XVALUE_QUANTIZED, _PER_TENSOR = 2, 2                                   # XValueUnion, XNNQuantParams


def _xnnpack_ranges(graph) -> dict[int, list]:
    """value id -> the float range of a per-tensor quantized value (scale x (q - zero point))."""
    out = {}
    for v in graph.table_list(2, "xvalues"):
        if v.scalar(0, "B") != _XVALUE_QUANTIZED:
            continue
        q = v.table(1, "xvalue")
        tv = q.table(0, "tensor_value") if q is not None else None
        if tv is None or q.scalar(1, "B") != _PER_TENSOR or tv.scalar(0, "h") not in _XNN_QRANGE:
            continue
        p = q.table(2, "quant_params")
        scale, zp = (p.scalar(0, "f"), p.scalar(1, "i")) if p is not None else (0.0, 0)
        lo, hi = _XNN_QRANGE[tv.scalar(0, "h")]
        out[tv.scalar(6, "I")] = [num(scale * (lo - zp)), num(scale * (hi - zp))]
    return out


# ---------------------------------------------------------------- .onnx

def _onnx(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    consts = _Constants()
    values: dict[str, np.ndarray] = {}

    def small(t, name):
        n = int(np.prod(t.dims)) if t.dims else 1
        if n <= SMALL_VALUES and t.data_location != onnx.TensorProto.EXTERNAL:
            a = numpy_helper.to_array(t)
            if np.issubdtype(a.dtype, np.number):
                consts.add(name, name, str(a.dtype), list(a.shape), a)
                values[name] = a
    for t in g.initializer:
        small(t, t.name)
    ops = []
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    small(a.t, node.output[0])
        ops.append((node.op_type, list(node.input)[:MAX_ARGS], list(node.output)))
    return {"reader": f"onnx {onnx.__version__} (graph nodes, initializers, Constant nodes)",
            "operators": [o[0] for o in ops[:MAX_OPS] if o[0] != "Constant"],
            "n_operators": sum(o[0] != "Constant" for o in ops),
            "constants": consts.done(_users(ops, consts.keys())), "n_constants": consts.total,
            **_onnx_io(g, ops, values)}


def _onnx_io(g, ops: list, values: dict) -> dict:
    """Inputs and outputs with the float range their QuantizeLinear (DequantizeLinear) can carry."""
    def qrange(scale_name: str, zp_name: str | None) -> list | None:
        scale, zp = values.get(scale_name), values.get(zp_name) if zp_name else None
        if scale is None or scale.size != 1:
            return None
        kind = str(zp.dtype) if zp is not None else "uint8"      # ONNX's default zero point is uint8
        if kind not in _QRANGE:
            return None
        lo, hi = _QRANGE[kind]
        z = float(zp.reshape(-1)[0]) if zp is not None else 0.0
        return [num(float(scale.reshape(-1)[0]) * (lo - z)), num(float(scale.reshape(-1)[0]) * (hi - z))]
    out = {}
    for key, tensors in (("inputs", g.input), ("outputs", g.output)):
        items = []
        for t in list(tensors)[:8]:
            rng = None
            for name, ins, outs in ops:
                if key == "inputs" and name == "QuantizeLinear" and ins[:1] == [t.name] and len(ins) > 1:
                    rng = qrange(ins[1], ins[2] if len(ins) > 2 else None)
                if key == "outputs" and name == "DequantizeLinear" and outs[:1] == [t.name] and len(ins) > 1:
                    rng = qrange(ins[1], ins[2] if len(ins) > 2 else None)
                if rng:
                    break
            items.append({"name": t.name, **({"quantized_range": rng} if rng else {})})
        out[key] = items
    return out
