"""Structure-aware mutations of a .tflite: change what the flatbuffer says, not random bytes.

    data, how = mutate(real_tflite_bytes, random.Random(0))

Random bit flips mostly hit weights; a hostile file instead lies about structure. These mutations
find the model's vectors and references (subgraphs, tensors, operators, buffers, operator codes,
operator inputs/outputs) and then: set a vector's length to an edge value ("veclen"), make every
entry of a table vector point at its first table ("repeat": the 1M-references-to-one-Operator file),
point one entry at a table of another kind ("reref"), or set one reference to an edge offset
("offset"). Used by `pipeline/tools/fuzz.py` for half of the .tflite mutants.
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from pipeline.filecheck.flatbuf import Corrupt, _Buf, _Table

EDGE_LENGTHS = (0, 1, 2, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)
EDGE_OFFSETS = (0, 4, 0x7FFFFFFC, 0xFFFFFFFC)


@dataclass
class Layout:
    lengths: list[int] = field(default_factory=list)            # positions of vector length fields
    table_vectors: list[tuple[int, int]] = field(default_factory=list)   # (first element pos, count)
    tables: list[int] = field(default_factory=list)             # positions of tables
    refs: list[int] = field(default_factory=list)               # positions of uoffset fields


def layout(data: bytes) -> Layout:
    """Where the model's vectors and references are (a walk like flatbuf.check_tflite, recording)."""
    b, out = _Buf(data), Layout()

    def vec(t: _Table, slot: int) -> tuple[int, int]:
        p = t._ref(slot)
        if not p:
            return 0, 0
        out.refs.append(t._field(slot, 4))
        out.lengths.append(p)
        return p + 4, b.u32(p, "len")

    def tables(t: _Table, slot: int) -> list[_Table]:
        start, n = vec(t, slot)
        if not n:
            return []
        out.table_vectors.append((start, n))
        res = []
        for i in range(min(n, 4096)):
            pos = start + 4 * i + b.u32(start + 4 * i, "ref")
            out.refs.append(start + 4 * i)
            out.tables.append(pos)
            res.append(_Table(b, pos, "t"))
        return res

    model = _Table(b, b.u32(0, "root"), "model")
    tables(model, 1)
    tables(model, 4)
    for sg in tables(model, 2):
        vec(sg, 1)
        vec(sg, 2)
        tables(sg, 0)
        for op in tables(sg, 3):
            vec(op, 1)
            vec(op, 2)
    return out


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    try:
        lay = layout(data)
    except Corrupt:
        return data, "structure: unparsable seed (unchanged)"
    b = bytearray(data)
    ops = [op for op, ok in (("veclen", lay.lengths), ("repeat", lay.table_vectors),
                             ("reref", lay.table_vectors and len(lay.tables) > 1), ("offset", lay.refs)) if ok]
    op = rng.choice(ops)
    if op == "veclen":
        p = rng.choice(lay.lengths)
        v = rng.choice(EDGE_LENGTHS + (struct.unpack_from("<I", b, p)[0] * 1000 & 0xFFFFFFFF,))
        struct.pack_into("<I", b, p, v)
        return bytes(b), f"structure: vector length @{p} -> {v}"
    if op == "repeat":
        start, n = rng.choice(lay.table_vectors)
        first = start + struct.unpack_from("<I", b, start)[0]
        for i in range(1, n):
            slot = start + 4 * i
            if first > slot:
                struct.pack_into("<I", b, slot, first - slot)
        return bytes(b), f"structure: {n} entries @{start} all -> the first table"
    if op == "reref":
        start, n = rng.choice(lay.table_vectors)
        slot = start + 4 * rng.randrange(n)
        target = rng.choice([t for t in lay.tables if t > slot] or [slot + 4])
        struct.pack_into("<I", b, slot, target - slot)
        return bytes(b), f"structure: entry @{slot} -> another table @{target}"
    p = rng.choice(lay.refs)
    v = rng.choice(EDGE_OFFSETS)
    struct.pack_into("<I", b, p, v)
    return bytes(b), f"structure: reference @{p} -> {v:#x}"
