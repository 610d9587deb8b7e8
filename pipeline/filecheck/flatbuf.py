"""A minimal flatbuffer verifier for .tflite and the ExecuTorch .pte header, in pure Python.

    from pipeline.filecheck.flatbuf import check_tflite, check_pte_header
    check_tflite(data)        # raises Corrupt("what is wrong") or returns a short summary dict

Why: the TFLite interpreters build a model from a file without running flatbuffers' verifier, so a
corrupt offset makes them read out of bounds (a segfault, caught by the isolated worker, but without
a useful message). This walks every table, vector and index the interpreter will follow (model ->
subgraphs -> tensors/operators, buffers, operator codes) and checks bounds and cross-references,
so most corrupt files are rejected with one clear line before any runtime sees them. The `flatbuffers`
Python package has no verifier and TensorFlow's generated reader does no bounds checks, hence this.
ExecuTorch verifies its own flatbuffer (Verification.InternalConsistency); here only its extended
header (program and segment sizes against the file size) is checked, which catches truncation.
Imports nothing but the standard library (it also runs in the tflite-runtime venv).
"""
from __future__ import annotations

import struct

MAX_TENSOR_TYPE = 31       # TensorType enum (schema v3c has 0..20); leave room for newer types
MAX_RANK = 16


class Corrupt(ValueError):
    pass


class _Buf:
    def __init__(self, data) -> None:
        self.d = data
        self.n = len(data)

    def _need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or pos + size > self.n:
            raise Corrupt(f"{what} at byte {pos} (+{size}) lies outside the file ({self.n} bytes)")

    def u8(self, pos, what):
        self._need(pos, 1, what)
        return self.d[pos]

    def u16(self, pos, what):
        self._need(pos, 2, what)
        return struct.unpack_from("<H", self.d, pos)[0]

    def u32(self, pos, what):
        self._need(pos, 4, what)
        return struct.unpack_from("<I", self.d, pos)[0]

    def i32(self, pos, what):
        self._need(pos, 4, what)
        return struct.unpack_from("<i", self.d, pos)[0]

    def u64(self, pos, what):
        self._need(pos, 8, what)
        return struct.unpack_from("<Q", self.d, pos)[0]


class _Table:
    """A flatbuffer table: its vtable checked once, fields read with bounds checks."""

    def __init__(self, buf: _Buf, pos: int, what: str) -> None:
        self.b, self.pos, self.what = buf, pos, what
        if pos % 4:
            raise Corrupt(f"{what}: table at byte {pos} is misaligned")
        vt = pos - buf.i32(pos, f"{what} vtable offset")
        vt_size = buf.u16(vt, f"{what} vtable")
        tbl_size = buf.u16(vt + 2, f"{what} vtable")
        if vt_size < 4 or vt_size % 2:
            raise Corrupt(f"{what}: vtable size {vt_size} is invalid")
        buf._need(vt, vt_size, f"{what} vtable")
        buf._need(pos, max(tbl_size, 4), f"{what} table")
        self.vt, self.vt_size, self.tbl_size = vt, vt_size, tbl_size

    def _field(self, slot: int, size: int) -> int:
        """Position of field `slot`, or 0 when absent."""
        o = 4 + 2 * slot
        if o >= self.vt_size:
            return 0
        fo = self.b.u16(self.vt + o, f"{self.what} vtable")
        if fo == 0:
            return 0
        if fo + size > self.tbl_size:
            raise Corrupt(f"{self.what}: field {slot} lies outside its table")
        return self.pos + fo

    def scalar(self, slot: int, fmt: str, default=0):
        size = struct.calcsize("<" + fmt)
        p = self._field(slot, size)
        if not p:
            return default
        self.b._need(p, size, f"{self.what} field {slot}")
        return struct.unpack_from("<" + fmt, self.b.d, p)[0]

    def _ref(self, slot: int) -> int:
        p = self._field(slot, 4)
        if not p:
            return 0
        return p + self.b.u32(p, f"{self.what} field {slot}")

    def table(self, slot: int, what: str) -> "_Table | None":
        p = self._ref(slot)
        return _Table(self.b, p, what) if p else None

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        p = self._ref(slot)
        if not p:
            return 0, 0
        n = self.b.u32(p, f"{what} length")
        self.b._need(p + 4, n * elem_size, f"{what} ({n} elements)")
        return p + 4, n

    def tables(self, slot: int, what: str) -> list["_Table"]:
        start, n = self.vector(slot, 4, what)
        return [_Table(self.b, start + 4 * i + self.b.u32(start + 4 * i, what), f"{what}[{i}]")
                for i in range(n)]

    def string(self, slot: int, what: str) -> None:
        start, n = self.vector(slot, 1, what)
        if start:
            self.b._need(start + n, 1, f"{what} terminator")

    def text(self, slot: int, what: str) -> str:
        start, n = self.vector(slot, 1, what)
        return bytes(self.b.d[start:start + n]).decode("utf-8", "replace") if start else ""

    def ints(self, slot: int, what: str) -> list[int]:
        start, n = self.vector(slot, 4, what)
        return list(struct.unpack_from(f"<{n}i", self.b.d, start)) if n else []


def check_tflite(data) -> dict:
    """Walk a TFLite model (schema v3) and check every offset and index the interpreter follows."""
    b = _Buf(data)
    root = b.u32(0, "root offset")
    model = _Table(b, root, "model")
    version = model.scalar(0, "I")
    if version != 3:
        raise Corrupt(f"schema version {version}, expected 3")
    codes = model.tables(1, "operator_codes")
    for i, c in enumerate(codes):
        c.string(1, f"operator_codes[{i}].custom_code")
    model.string(3, "description")
    model.ints(5, "metadata_buffer")
    for i, m in enumerate(model.tables(6, "metadata")):
        m.string(0, f"metadata[{i}].name")
    for i, sd in enumerate(model.tables(7, "signature_defs")):
        for slot in (0, 1):
            for j, tm in enumerate(sd.tables(slot, f"signature_defs[{i}].{'inputs' if slot == 0 else 'outputs'}")):
                tm.string(0, f"signature_defs[{i}] tensor map [{j}].name")
        sd.string(2, f"signature_defs[{i}].signature_key")
    buffers = model.tables(4, "buffers")
    for i, buf in enumerate(buffers):
        buf.vector(0, 1, f"buffers[{i}].data")
        off, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
        if off > 1 and off + size > b.n:
            raise Corrupt(f"buffers[{i}]: data at byte {off} (+{size}) lies outside the file ({b.n} bytes)")
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise Corrupt("the model has no subgraph")
    n_ops = 0
    for s, sg in enumerate(subgraphs):
        tensors = sg.tables(0, f"subgraphs[{s}].tensors")
        nt = len(tensors)
        sg.string(4, f"subgraphs[{s}].name")
        for t, ten in enumerate(tensors):
            what = f"subgraphs[{s}].tensors[{t}]"
            shape = ten.ints(0, what + ".shape")
            if len(shape) > MAX_RANK or any(d < -1 for d in shape):
                raise Corrupt(f"{what}: invalid shape {shape[:8]}")
            if ten.scalar(1, "b") not in range(0, MAX_TENSOR_TYPE + 1):
                raise Corrupt(f"{what}: unknown tensor type {ten.scalar(1, 'b')}")
            if ten.scalar(2, "I") >= max(len(buffers), 1):
                raise Corrupt(f"{what}: buffer index {ten.scalar(2, 'I')} >= {len(buffers)} buffers")
            ten.string(3, what + ".name")
            q = ten.table(4, what + ".quantization")
            if q is not None:
                # min, max, scale (float), zero_point (int64), details (union table), quantized_dimension
                for slot, size in ((0, 4), (1, 4), (2, 4), (3, 8)):
                    q.vector(slot, size, f"{what}.quantization[{slot}]")
                q.table(5, what + ".quantization.details")
            ten.ints(7, what + ".shape_signature")
        for name, slot in (("inputs", 1), ("outputs", 2)):
            for v in sg.ints(slot, f"subgraphs[{s}].{name}"):
                if not 0 <= v < nt:
                    raise Corrupt(f"subgraphs[{s}].{name}: tensor index {v} not in [0, {nt})")
        for o, op in enumerate(sg.tables(3, f"subgraphs[{s}].operators")):
            what = f"subgraphs[{s}].operators[{o}]"
            op.table(4, what + ".builtin_options")         # a union member: at least a sound table
            op.vector(5, 1, what + ".custom_options")
            op.vector(7, 1, what + ".mutating_variable_inputs")
            op.ints(8, what + ".intermediates")
            if op.scalar(0, "I") >= len(codes):
                raise Corrupt(f"{what}: opcode index {op.scalar(0, 'I')} >= {len(codes)} operator codes")
            for name, slot in (("inputs", 1), ("outputs", 2)):
                for v in op.ints(slot, f"{what}.{name}"):
                    if not -1 <= v < nt:
                        raise Corrupt(f"{what}.{name}: tensor index {v} not in [-1, {nt})")
            n_ops += 1
    return {"subgraphs": len(subgraphs), "operators": n_ops, "buffers": len(buffers)}


def check_pte_header(data) -> None:
    """Check the ExecuTorch extended header ('eh00' at byte 8) against the file size."""
    b = _Buf(data)
    if b.n < 40 or bytes(data[8:12]) != b"eh00":
        return  # no extended header: an old or header-less program; the runtime verifies the rest
    length = b.u32(12, "extended header")
    program_size = b.u64(16, "extended header")
    seg_base = b.u64(24, "extended header")
    seg_size = b.u64(32, "extended header") if length >= 32 else 0
    if length < 24:
        raise Corrupt(f"extended header length {length} < 24")
    if program_size > b.n:
        raise Corrupt(f"program of {program_size} bytes but the file has {b.n}: truncated")
    if seg_base:
        if seg_base < program_size or seg_base > b.n:
            raise Corrupt(f"segment base offset {seg_base} outside [{program_size}, {b.n}]: truncated or corrupt")
        if seg_size and seg_base + seg_size > b.n:
            raise Corrupt(f"segments end at byte {seg_base + seg_size} but the file has {b.n}: truncated")


def _pte_root(data) -> "_Table":
    b = _Buf(data)
    if bytes(data[4:6]) != b"ET":
        raise Corrupt("not an ExecuTorch program (no ET identifier)")
    return _Table(b, b.u32(0, "root offset"), "program")


def pte_program(data) -> list[dict]:
    """Per method of an ExecuTorch program (schema/program.fbs): its name, the kernel operators it
    calls outside any delegate (what the app must link), and its delegates (backend id, compile
    specs, payload bytes). Bounded: one pass over the execution plans' tables."""
    prog = _pte_root(data)
    inline = prog.tables(3, "backend_delegate_data")
    segments = prog.tables(4, "segments")
    methods = []
    for i, plan in enumerate(prog.tables(1, "execution_plan")):
        what = f"execution_plan[{i}]"
        ops = []
        for j, op in enumerate(plan.tables(6, what + ".operators")):
            name, overload = op.text(0, f"{what}.operators[{j}].name"), op.text(1, f"{what}.operators[{j}].overload")
            ops.append(f"{name}.{overload}" if overload else name)
        delegates = []
        for j, d in enumerate(plan.tables(7, what + ".delegates")):
            dw = f"{what}.delegates[{j}]"
            specs = {c.text(0, f"{dw}.compile_specs.key"): _bytes(c, 1, f"{dw}.compile_specs.value")
                     for c in d.tables(2, dw + ".compile_specs")}
            ref = d.table(1, dw + ".processed")
            loc, idx = (ref.scalar(0, "b"), ref.scalar(1, "I")) if ref else (-1, 0)
            if loc == 0 and idx < len(inline):            # DataLocation.INLINE
                payload = inline[idx].vector(0, 1, f"backend_delegate_data[{idx}]")[1]
            elif loc == 1 and idx < len(segments):        # DataLocation.SEGMENT
                payload = segments[idx].scalar(1, "Q")
            else:
                raise Corrupt(f"{dw}: payload reference (location {loc}, index {idx}) points nowhere")
            delegates.append({"id": d.text(0, dw + ".id"), "compile_specs": specs, "payload_bytes": payload})
        methods.append({"name": plan.text(0, what + ".name"), "operators": ops, "delegates": delegates})
    return methods


def _bytes(t: "_Table", slot: int, what: str) -> str:
    start, n = t.vector(slot, 1, what)
    raw = bytes(t.b.d[start:start + n]) if start else b""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
