"""What an older runtime lacks, read once from its error at measurement time into structured fields.

    lacks.parse("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. ...")
    # {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}
    lacks.describe({"kind": "op", "op": "FULLY_CONNECTED", "version": 12})   # "FULLY_CONNECTED v12"

Kinds: `op` (a builtin operator, or an operator version, it has no kernel for), `custom_op`,
`ir_version` (an ONNX file newer than the runtime's IR), `schema` (a file format it does not read).
(ONNX Runtime only warns about an opset newer than it knows, on stderr, and loads the file: a kernel it
then lacks is an `op`.) An error none of the patterns knows gives {}: the
record keeps the runtime's own first line either way.
"""
from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, re.Pattern, tuple[str, ...]], ...] = (
    # TFLite/LiteRT InterpreterBuilder (tensorflow#50641, tflite-micro#621)
    ("op", re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'"), ("op", "version")),
    ("custom_op", re.compile(r"Encountered unresolved custom op: ([\w.\-/]+?)\.?(?:\s|$)"), ("op",)),
    ("schema", re.compile(r"Model provided has model identifier '([^']*)', should be '([^']*)'"),
     ("found", "expected")),
    # ONNX Runtime's model loader and kernel registry
    ("ir_version", re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)"),
     ("version", "supported")),
    ("op", re.compile(r"Could not find an implementation for (\w+)\((\d+)\) node"), ("op", "version")),
    ("op", re.compile(r"Unrecognized attribute: (\w+) for operator (\w+)"), ("attribute", "op")),
)


def parse(text: str) -> dict:
    """The first thing the runtime says it lacks, as fields; {} when the error names none."""
    for kind, pattern, fields in _PATTERNS:
        m = pattern.search(text or "")
        if m:
            out: dict = {"kind": kind}
            for name, value in zip(fields, m.groups()):
                out[name] = int(value) if value.isdigit() else value
            return out
    return {}


def describe(lack: dict) -> str:
    """A short phrase for a table cell's title and the findings: "FULLY_CONNECTED v12", "IR version 10"."""
    kind = lack.get("kind", "")
    if kind == "op":
        if "attribute" in lack:
            return f"{lack['op']} attribute {lack['attribute']}"
        return f"{lack['op']} v{lack['version']}" if "version" in lack else str(lack.get("op", ""))
    if kind == "custom_op":
        return f"custom op {lack['op']}"
    if kind == "ir_version":
        return f"IR version {lack['version']} (reads up to {lack['supported']})"
    if kind == "schema":
        return f"file identifier {lack['found']!r}"
    return ""
