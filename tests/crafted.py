"""Crafted hostile .tflite files, generated from a real one (no fixtures on disk).

    repeated_operator_refs(base_bytes, n)  # subgraph 0's operators vector: n references to ONE table
    many_operators(base_bytes, n)          # n distinct (tiny) operator tables: a big but honest shape

Flatbuffer offsets point forward (uoffset), so the new vector and tables are appended to the file and
the subgraph's `operators` field is re-pointed at them.
"""
from __future__ import annotations

import struct

from pipeline.filecheck.flatbuf import _Buf, _Table


def _operators_field(data: bytes) -> int:
    b = _Buf(data)
    model = _Table(b, b.u32(0, "root"), "model")
    start, n = model.vector(2, 4, "subgraphs")
    sg = _Table(b, start + b.u32(start, "sg"), "sg")
    p = sg._field(3, 4)
    assert p, "subgraph has no operators field"
    return p


def _append_ops(data: bytes, n_refs: int, n_tables: int) -> bytes:
    out = bytearray(data)
    out += b"\0" * (-len(out) % 4)
    field = _operators_field(bytes(out))
    vec = len(out)
    out += struct.pack("<I", n_refs) + b"\0" * (4 * n_refs)
    vt = len(out)
    out += struct.pack("<HHH", 6, 8, 4) + b"\0\0"          # vtable: 1 field (opcode_index) at +4
    tables = []
    for _ in range(n_tables):
        pos = len(out)
        out += struct.pack("<iI", pos - vt, 0)            # soffset to the vtable, opcode_index 0
        tables.append(pos)
    for i in range(n_refs):
        slot = vec + 4 + 4 * i
        struct.pack_into("<I", out, slot, tables[i % n_tables] - slot)
    struct.pack_into("<I", out, field, vec - field)
    return bytes(out)


def repeated_operator_refs(data: bytes, n: int) -> bytes:
    return _append_ops(data, n, 1)


def many_operators(data: bytes, n: int) -> bytes:
    return _append_ops(data, n, n)
