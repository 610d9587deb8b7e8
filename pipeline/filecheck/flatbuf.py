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

Work is bounded by the file's size: every table is checked once (a table referenced twice in one
vector is refused: no converter writes that, and a crafted file uses it to make a 4 MB file cost
minutes), every integer vector is range-checked once (cached by position, read as a compact array,
never as Python objects), so time and memory grow linearly with the bytes, whatever the references.
"""
from __future__ import annotations

import struct
from array import array
from functools import partialmethod

MAX_TENSOR_TYPE = 31       # TensorType enum (schema v3c has 0..20); leave room for newer types
MAX_RANK = 16


class Corrupt(ValueError):
    pass


class _Buf:
    def __init__(self, data) -> None:
        self.d = data
        self.n = len(data)
        self.ranges: dict[int, tuple[int, int, int]] = {}   # int vector start -> (len, min, max)

    def _need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or pos + size > self.n:
            raise Corrupt(f"{what} at byte {pos} (+{size}) lies outside the file ({self.n} bytes)")

    def _scalar(self, fmt: str, pos: int, what: str):
        """One little-endian scalar (struct format `fmt`) at `pos`, bounds-checked."""
        self._need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.d, pos)[0]

    u8 = partialmethod(_scalar, "<B")
    u16 = partialmethod(_scalar, "<H")
    u32 = partialmethod(_scalar, "<I")
    i32 = partialmethod(_scalar, "<i")
    u64 = partialmethod(_scalar, "<Q")


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

    def tables(self, slot: int, what: str, unique: bool = False):
        """(count, iterator over the vector's distinct tables): each position is checked once. With
        `unique`, a repeated reference is refused (subgraphs, tensors, operators: converters share
        empty buffers and strings, never these)."""
        start, n = self.vector(slot, 4, what)
        return n, self._iter_tables(start, n, what, unique)

    def table_list(self, slot: int, what: str) -> list["_Table"]:
        """Every entry of a table vector, in order (indexed by position, as the .pte's delegate data)."""
        start, n = self.vector(slot, 4, what)
        return [_Table(self.b, start + 4 * i + self.b.u32(start + 4 * i, what), f"{what}[{i}]") for i in range(n)]

    def _iter_tables(self, start: int, n: int, what: str, unique: bool):
        offs = array("I")
        offs.frombytes(bytes(self.b.d[start:start + 4 * n]))
        if array("I").itemsize != 4:
            raise RuntimeError("array('I') is not 4 bytes on this platform")
        if struct.pack("=I", 1) != struct.pack("<I", 1):
            offs.byteswap()
        seen: set[int] = set()
        for i, off in enumerate(offs):
            pos = start + 4 * i + off
            if pos in seen:
                if unique:
                    raise Corrupt(f"{what}[{i}] refers to a table already listed: a repeated reference "
                                  f"no converter writes ({n} entries)")
                continue
            seen.add(pos)
            yield i, _Table(self.b, pos, f"{what}[{i}]")

    def string(self, slot: int, what: str) -> None:
        start, n = self.vector(slot, 1, what)
        if start:
            self.b._need(start + n, 1, f"{what} terminator")

    def text(self, slot: int, what: str) -> str:
        start, n = self.vector(slot, 1, what)
        return bytes(self.b.d[start:start + n]).decode("utf-8", "replace") if start else ""

    def ints(self, slot: int, what: str, limit: int) -> list[int]:
        """A short int vector (a shape): refused past `limit` entries before anything is read."""
        start, n = self.vector(slot, 4, what)
        if n > limit:
            raise Corrupt(f"{what}: {n} entries (at most {limit})")
        return list(struct.unpack_from(f"<{n}i", self.b.d, start)) if n else []

    def int_range(self, slot: int, what: str) -> tuple[int, int, int]:
        """(length, min, max) of an int vector, computed once per vector (shared vectors cost once)."""
        start, n = self.vector(slot, 4, what)
        if not n:
            return 0, 0, -1
        if start not in self.b.ranges:
            a = array("i")
            a.frombytes(bytes(self.b.d[start:start + 4 * n]))
            if struct.pack("=I", 1) != struct.pack("<I", 1):
                a.byteswap()
            self.b.ranges[start] = (n, min(a), max(a))
        return self.b.ranges[start]


def _in(rng: tuple[int, int, int], lo: int, hi: int) -> bool:
    n, mn, mx = rng
    return n == 0 or (lo <= mn and mx < hi)


def check_tflite(data) -> dict:
    """Walk a TFLite model (schema v3) and check every offset and index the interpreter follows."""
    b = _Buf(data)
    root = b.u32(0, "root offset")
    model = _Table(b, root, "model")
    version = model.scalar(0, "I")
    if version != 3:
        raise Corrupt(f"schema version {version}, expected 3")
    n_codes, codes = model.tables(1, "operator_codes")
    for i, c in codes:
        c.string(1, f"operator_codes[{i}].custom_code")
    model.string(3, "description")
    model.int_range(5, "metadata_buffer")
    for i, m in model.tables(6, "metadata")[1]:
        m.string(0, f"metadata[{i}].name")
    for i, sd in model.tables(7, "signature_defs")[1]:
        for slot in (0, 1):
            for j, tm in sd.tables(slot, f"signature_defs[{i}].{'inputs' if slot == 0 else 'outputs'}")[1]:
                tm.string(0, f"signature_defs[{i}] tensor map [{j}].name")
        sd.string(2, f"signature_defs[{i}].signature_key")
    n_buffers, buffers = model.tables(4, "buffers")
    for i, buf in buffers:
        buf.vector(0, 1, f"buffers[{i}].data")
        off, size = buf.scalar(1, "Q"), buf.scalar(2, "Q")
        if off > 1 and off + size > b.n:
            raise Corrupt(f"buffers[{i}]: data at byte {off} (+{size}) lies outside the file ({b.n} bytes)")
    n_sub, subgraphs = model.tables(2, "subgraphs", unique=True)
    if not n_sub:
        raise Corrupt("the model has no subgraph")
    n_ops = 0
    for s, sg in subgraphs:
        nt, tensors = sg.tables(0, f"subgraphs[{s}].tensors", unique=True)
        sg.string(4, f"subgraphs[{s}].name")
        for t, ten in tensors:
            what = f"subgraphs[{s}].tensors[{t}]"
            shape = ten.ints(0, what + ".shape", MAX_RANK)
            if any(d < -1 for d in shape):
                raise Corrupt(f"{what}: invalid shape {shape[:8]}")
            if ten.scalar(1, "b") not in range(0, MAX_TENSOR_TYPE + 1):
                raise Corrupt(f"{what}: unknown tensor type {ten.scalar(1, 'b')}")
            if ten.scalar(2, "I") >= max(n_buffers, 1):
                raise Corrupt(f"{what}: buffer index {ten.scalar(2, 'I')} >= {n_buffers} buffers")
            ten.string(3, what + ".name")
            q = ten.table(4, what + ".quantization")
            if q is not None:
                # min, max, scale (float), zero_point (int64), details (union table), quantized_dimension
                for slot, size in ((0, 4), (1, 4), (2, 4), (3, 8)):
                    q.vector(slot, size, f"{what}.quantization[{slot}]")
                q.table(5, what + ".quantization.details")
            ten.ints(7, what + ".shape_signature", MAX_RANK)
        for name, slot in (("inputs", 1), ("outputs", 2)):
            if not _in(sg.int_range(slot, f"subgraphs[{s}].{name}"), 0, nt):
                raise Corrupt(f"subgraphs[{s}].{name}: a tensor index is not in [0, {nt})")
        n, ops = sg.tables(3, f"subgraphs[{s}].operators", unique=True)
        for o, op in ops:
            what = f"subgraphs[{s}].operators[{o}]"
            op.table(4, what + ".builtin_options")         # a union member: at least a sound table
            op.vector(5, 1, what + ".custom_options")
            op.vector(7, 1, what + ".mutating_variable_inputs")
            op.int_range(8, what + ".intermediates")
            if op.scalar(0, "I") >= n_codes:
                raise Corrupt(f"{what}: opcode index {op.scalar(0, 'I')} >= {n_codes} operator codes")
            for name, slot in (("inputs", 1), ("outputs", 2)):
                if not _in(op.int_range(slot, f"{what}.{name}"), -1, nt):
                    raise Corrupt(f"{what}.{name}: a tensor index is not in [-1, {nt})")
        n_ops += n
    return {"subgraphs": n_sub, "operators": n_ops, "buffers": n_buffers}


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


def root(data, what: str) -> "_Table":
    """The root table of any flatbuffer, read with the same bounds checks (for readers that walk a
    file's graph: `pipeline/explain/filefacts.py` on .tflite, .pte and XNNPACK payloads)."""
    b = _Buf(data)
    return _Table(b, b.u32(0, "root offset"), what)


def _pte_root(data) -> "_Table":
    if bytes(data[4:6]) != b"ET":
        raise Corrupt("not an ExecuTorch program (no ET identifier)")
    return root(data, "program")


def pte_program(data) -> list[dict]:
    """Per method of an ExecuTorch program (schema/program.fbs): its name, the kernel operators it
    calls outside any delegate (what the app must link), and its delegates (backend id, compile
    specs, payload bytes). Bounded: one pass over the execution plans' tables."""
    prog = _pte_root(data)
    inline = prog.table_list(3, "backend_delegate_data")
    segments = prog.table_list(4, "segments")
    methods = []
    for i, plan in enumerate(prog.table_list(1, "execution_plan")):
        what = f"execution_plan[{i}]"
        ops = []
        for j, op in enumerate(plan.table_list(6, what + ".operators")):
            name, overload = op.text(0, f"{what}.operators[{j}].name"), op.text(1, f"{what}.operators[{j}].overload")
            ops.append(f"{name}.{overload}" if overload else name)
        delegates = []
        for j, d in enumerate(plan.table_list(7, what + ".delegates")):
            dw = f"{what}.delegates[{j}]"
            specs = {c.text(0, f"{dw}.compile_specs.key"): _bytes(c, 1, f"{dw}.compile_specs.value")
                     for c in d.table_list(2, dw + ".compile_specs")}
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
