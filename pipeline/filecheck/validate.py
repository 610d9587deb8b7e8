"""Checks before a file reaches a native runtime: identifier, size, zip and flatbuffer structure; for a
Core ML `.mlpackage` (a directory) its manifest and model spec (`pipeline/filecheck/coreml.py`); for a
Core AI `.aimodel` (a directory) its members, hash and program summary (`pipeline/filecheck/coreai.py`).

    validate.check_model_file(Path("model.tflite"))   # -> "tflite", or a one-line BadModelFile
    validate.check_isolated(Path("model.tflite"))     # the same in a worker (pipeline/workers.py) under limits

Each failure is a one-line `BadModelFile` naming the file and what is wrong. What still crashes a
runtime after these checks is caught by the isolated worker. A user's file is checked by
`check_isolated`: in a child process with a memory ceiling and a time limit that grow with the file's
size, so a hostile file cannot make the harness itself slow or large.
"""
from __future__ import annotations

import errno
import mmap
import os
import resource
import stat
import struct
import sys
import zipfile
from pathlib import Path

from pipeline.filecheck import flatbuf as flatcheck

EXTENSIONS = {".tflite": "tflite", ".pte": "pte", ".ptl": "ptl", ".onnx": "onnx", ".mlpackage": "mlpackage",
              ".aimodel": "aimodel"}


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
    """Return the file's format ('tflite' | 'pte' | 'ptl' | 'onnx' | 'mlpackage' | 'aimodel') or raise BadModelFile."""
    path = Path(path)
    try:
        path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadModelFile(f"{path}: a symbolic link loop") from None
        if e.errno == errno.EACCES:
            raise BadModelFile(f"{path}: not readable (permission denied)") from None
        raise BadModelFile(f"{path}: no such file") from None
    if path.suffix.lower() == ".mlpackage":
        _check_mlpackage(path)
        return "mlpackage"
    if path.suffix.lower() == ".aimodel":
        _check_aimodel(path)
        return "aimodel"
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


def _check_aimodel(path: Path) -> None:
    from pipeline.filecheck import coreai
    try:
        coreai.inspect(path)
    except coreai.Invalid as e:
        raise BadModelFile(f"{path}: not a valid Core AI asset: {e}") from None
    except OSError as e:
        raise BadModelFile(f"{path}: cannot read: {type(e).__name__}: {e}") from None


# the isolated check's limits: a fixed allowance plus a share per MB of the file (the walk is linear)
CHECK_BASE_MB, CHECK_MB_PER_MB, CHECK_BASE_S, CHECK_S_PER_MB = 256, 3, 10.0, 1.0
# a Core AI folder is read by coreai-core's native reader, whose libraries alone map ~400 MB (256 MB:
# "failed to map segment from shared object"): its base allowance is larger
CHECK_BASE_MB_OF = {".aimodel": 1024}
# ... and its import (~3 s idle, over 10 s on a loaded 2-core machine) is paid inside the time limit
CHECK_BASE_S_OF = {".aimodel": 60.0}


def check_isolated(path: Path) -> str:
    """`check_model_file` in a child process under RLIMIT_AS and a timeout bounded by the file size."""
    path = Path(path)
    try:
        mb = (_folder_bytes(path) if path.is_dir() else path.stat().st_size) / 2**20
    except OSError:
        return check_model_file(path)        # missing, loop, no permission: the same one line, here
    limit_mb = int(CHECK_BASE_MB_OF.get(path.suffix.lower(), CHECK_BASE_MB) + CHECK_MB_PER_MB * mb)
    timeout = CHECK_BASE_S_OF.get(path.suffix.lower(), CHECK_BASE_S) + CHECK_S_PER_MB * mb
    from pipeline import workers
    # the worker sets its own limit (no preexec_fn: unsafe in a threaded parent)
    item = {"id": 0, "path": str(path), "cwd": os.getcwd(), "limit_mb": limit_mb}   # its lines name the file as given
    res = workers.run(workers.Job("pipeline.filecheck.validate", (item,), timeout_s=timeout))[0]
    if res["status"] == "ok":
        return res["format"]
    if res["status"] == "bad":
        raise BadModelFile(res["error"])
    if res.get("death") == "hang" or "timed out" in res.get("why", ""):   # also before it began ("startup")
        raise BadModelFile(f"{path}: its structure check took over {timeout:.0f}s (a {mb:.1f} MB file): "
                           "refused as hostile or broken")
    why = f"needed more than {limit_mb} MB" if "MemoryError" in res["error"] else res.get("why", res["error"])
    raise BadModelFile(f"{path}: its structure check failed ({why}): refused as hostile or broken")


def _folder_bytes(folder: Path) -> int:
    """A directory artifact's size for the check's limits: its regular files, links not followed."""
    return sum(st.st_size for dirpath, _, names in os.walk(folder)
               for st in (os.lstat(os.path.join(dirpath, n)) for n in names) if stat.S_ISREG(st.st_mode))


def _isolated(item: dict, params: dict) -> dict:
    """`check_isolated`'s worker item: the check under the memory ceiling; a bad file is a result, not a death."""
    resource.setrlimit(resource.RLIMIT_AS, (item["limit_mb"] * 2**20, item["limit_mb"] * 2**20))
    os.chdir(item["cwd"])
    try:
        return {"status": "ok", "format": check_model_file(Path(item["path"]))}
    except BadModelFile as e:
        return {"status": "bad", "error": str(e).splitlines()[0]}


if __name__ == "__main__":
    from pipeline import workers
    sys.exit(workers.serve(_isolated))
