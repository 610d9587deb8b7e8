"""Cheap checks before a file reaches a native runtime: identifier, size, zip structure; for a Core
ML `.mlpackage` (a directory) its manifest and model spec (`pipeline/filecheck/coreml.py`).

Each failure is a one-line `BadModelFile` naming the file and what is wrong. What still crashes a
runtime after these checks is caught by the isolated worker.
"""
from __future__ import annotations

import mmap
import os
import struct
import zipfile
from pathlib import Path

from pipeline.filecheck import flatbuf as flatcheck

EXTENSIONS = {".tflite": "tflite", ".pte": "pte", ".ptl": "ptl", ".onnx": "onnx", ".mlpackage": "mlpackage"}


class BadModelFile(ValueError):
    pass


def sniff(head: bytes) -> str:
    """The format a file's first bytes say it is, or '' when none."""
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if len(head) >= 8 and head[4:6] == b"ET" and head[6:8].isdigit():
        return "pte"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return ""


def _check_flatbuffer(path: Path, data_len: int, head: bytes, what: str) -> None:
    (root,) = struct.unpack("<I", head[:4])
    if root < 8 or root >= data_len:
        raise BadModelFile(f"{path}: {what} root offset {root} lies outside the file ({data_len} bytes): "
                           "truncated or corrupt")


def check_model_file(path: Path) -> str:
    """Return the file's format ('tflite' | 'pte' | 'ptl' | 'onnx' | 'mlpackage') or raise BadModelFile."""
    path = Path(path)
    if not path.exists():
        raise BadModelFile(f"{path}: no such file")
    if path.suffix.lower() == ".mlpackage":
        _check_mlpackage(path)
        return "mlpackage"
    if not path.is_file():
        raise BadModelFile(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise BadModelFile(f"{path}: not readable (permission denied)")
    size = path.stat().st_size
    if size == 0:
        raise BadModelFile(f"{path}: empty file")
    expected = EXTENSIONS.get(path.suffix.lower())
    if expected is None:
        raise BadModelFile(f"{path}: unknown extension {path.suffix!r}; expected one of "
                           f"{', '.join(EXTENSIONS)}")
    with open(path, "rb") as f:
        head = f.read(64)
    found = sniff(head)
    if expected == "onnx":
        _check_onnx(path, head, found)
        return "onnx"
    if expected == "ptl":
        if found != "zip":
            raise BadModelFile(f"{path}: not a zip archive, so not a TorchScript-mobile file"
                               + (f" (its bytes say {found})" if found else ""))
        _check_ptl(path)
        return "ptl"
    if found == "":
        kind = "TFLite flatbuffer (identifier TFL3)" if expected == "tflite" else "ExecuTorch program (identifier ETxx)"
        raise BadModelFile(f"{path}: not a {kind}: file identifier is {head[4:8]!r}")
    if found != expected:
        raise BadModelFile(f"{path}: contents are a {found} file but the extension says {expected}")
    if size < 16:
        raise BadModelFile(f"{path}: {size} bytes is too short for a {expected} file")
    _check_flatbuffer(path, size, head, expected)
    _check_structure(path, expected)
    return expected


def _check_structure(path: Path, fmt: str) -> None:
    """Walk the flatbuffer (tflite) or the extended header (pte): see pipeline/filecheck/flatbuf.py."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if fmt == "tflite":
                flatcheck.check_tflite(data)
            else:
                flatcheck.check_pte_header(data)
    except flatcheck.Corrupt as e:
        raise BadModelFile(f"{path}: corrupt {fmt} file: {e}") from None
    except (OSError, ValueError) as e:
        raise BadModelFile(f"{path}: cannot read: {type(e).__name__}: {e}") from None


def _check_ptl(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            bad = z.testzip()
    except Exception as e:  # noqa: BLE001 - zipfile raises zlib.error, NotImplementedError, ... on damage
        raise BadModelFile(f"{path}: broken zip archive: {type(e).__name__}: {e}") from None
    if bad is not None:
        raise BadModelFile(f"{path}: zip member {bad!r} fails its CRC check")
    if not any(n.endswith("/bytecode.pkl") or n == "bytecode.pkl" for n in names):
        raise BadModelFile(f"{path}: a zip without bytecode.pkl: not saved for the lite interpreter "
                           "(_save_for_lite_interpreter)")


def _check_onnx(path: Path, head: bytes, found: str) -> None:
    # an ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08
    if found:
        raise BadModelFile(f"{path}: contents are a {found} file but the extension says onnx")
    if head[:1] != b"\x08":
        raise BadModelFile(f"{path}: not an ONNX model (no ir_version field at the start)")


def _check_mlpackage(path: Path) -> None:
    from pipeline.filecheck import coreml
    try:
        coreml.inspect_mlpackage(path)
    except coreml.Invalid as e:
        raise BadModelFile(f"{path}: not a valid Core ML package: {e}") from None
    except OSError as e:
        raise BadModelFile(f"{path}: cannot read: {type(e).__name__}: {e}") from None
