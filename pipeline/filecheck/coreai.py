"""What a Core AI `.aimodel` is and holds, checked before (and besides) running it.

    .venv/bin/python -c "from pipeline.filecheck import coreai; print(coreai.facts('artifacts/digits_cnn/torch__coreai_w8.aimodel'))"

An `.aimodel` is a folder (coreai-core's `AIProgram.save_asset`): `<function program>.mlirb` (MLIR
bytecode, magic `ML\\xefR`), `<same>.hash` (the raw 32-byte SHA-256 of that bytecode) and `metadata.json`
(producer, asset version, creation date). `check` refuses, with one line naming the folder and what is
wrong, before any native code parses it: a member that is a symbolic link (it could point anywhere
outside the folder), anything but regular files and folders, too many or too large members, a missing
or wrong-length hash, a hash that does not match the bytecode, bytecode without MLIR's magic, metadata
that is not a small JSON object. Then `inspect` has coreai-core read the program's summary (a native
parser: callers that open a stranger's folder do it in a child process, `validate.check_isolated`):
functions with their inputs/outputs (dtype, shape), the operation histogram, weight storage per dtype
and the compressed share of the weight bytes, the compatibility version (= the minimum iOS/macOS).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

MAGIC = b"ML\xefR"              # MLIR bytecode
MAX_FILES = 64
MAX_METADATA_BYTES = 1 << 20
MAX_DEPTH = 4
# bits per stored element, by Core AI storage type: the compressed share of the weight bytes is
# what is stored below 16 bits (int8/int4 weights, 4-bit palette indices)
_BITS = {"Float32": 32, "Float16": 16, "BFloat16": 16, "Int32": 32, "UInt32": 32, "Int64": 64, "UInt64": 64,
         "Int16": 16, "UInt16": 16, "Int8": 8, "UInt8": 8, "Int4": 4, "UInt4": 4, "Int2": 2, "UInt2": 2,
         "UInt6": 6, "UInt3": 3, "UInt1": 1, "Bool": 8}
_FLOAT = ("Float32", "Float16", "BFloat16")
# Core AI's compatibility version is the OS release that runs the asset (its framework ships with 27)
OS_NAMES = "iOS/iPadOS/macOS/tvOS/visionOS/watchOS"


class Invalid(ValueError):
    pass


def _members(folder: Path) -> list[Path]:
    """Every entry under `folder`, without following links: a link or a special file is refused."""
    out, todo = [], [(folder, 0)]
    while todo:
        d, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise Invalid(f"nested deeper than {MAX_DEPTH} folders")
        with os.scandir(d) as it:
            for e in it:
                p = Path(e.path)
                rel = p.relative_to(folder)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    raise Invalid(f"member {rel} is a symbolic link (to {os.readlink(p)!r}): refused, a link can "
                                  "point outside the folder")
                if stat.S_ISDIR(st.st_mode):
                    todo.append((p, depth + 1))
                elif not stat.S_ISREG(st.st_mode):
                    raise Invalid(f"member {rel} is not a regular file")
                else:
                    out.append(p)
                if len(out) > MAX_FILES:
                    raise Invalid(f"more than {MAX_FILES} files: not a Core AI asset")
    return sorted(out)


def _sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def check(path: Path | str) -> dict:
    """The folder's structure, stdlib only (no native parser): {"programs": {name: bytes}, "files":
    {relative name: bytes}, "metadata": {...}, "hash_ok": True}; raises Invalid on anything wrong."""
    folder = Path(path)
    if not folder.is_dir():
        raise Invalid("not a folder (a Core AI .aimodel is a folder holding main.mlirb, main.hash, metadata.json)")
    files = _members(folder)
    rel = {str(f.relative_to(folder)): f for f in files}
    programs = sorted(n for n in rel if n.endswith(".mlirb") and "/" not in n)
    if not programs:
        raise Invalid(f"no program bytecode (*.mlirb) in it (members: {', '.join(sorted(rel)) or 'none'})")
    for name in programs:
        prog, hname = rel[name], name[:-len(".mlirb")] + ".hash"
        if hname not in rel:
            raise Invalid(f"{hname} is missing: the bytecode {name} cannot be checked against its hash")
        want = rel[hname].read_bytes()[:64]
        if len(want) != 32:
            raise Invalid(f"{hname} holds {len(want)} bytes, not a 32-byte SHA-256 digest")
        with open(prog, "rb") as f:
            head = f.read(len(MAGIC))
        if head != MAGIC:
            raise Invalid(f"{name} is not MLIR bytecode (starts with {head!r}, not {MAGIC!r})")
        if _sha256(prog) != want:
            raise Invalid(f"{hname} does not match the bytes of {name}: the bytecode changed after it was saved")
    meta_file = rel.get("metadata.json")
    if meta_file is None:
        raise Invalid("metadata.json is missing")
    if meta_file.stat().st_size > MAX_METADATA_BYTES:
        raise Invalid(f"metadata.json is over {MAX_METADATA_BYTES} bytes")
    try:
        meta = json.loads(meta_file.read_bytes())
    except ValueError as e:
        raise Invalid(f"metadata.json is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise Invalid("metadata.json is not a JSON object")
    return {"programs": {n: rel[n].stat().st_size for n in programs},
            "files": {n: f.stat().st_size for n, f in rel.items()}, "metadata": meta, "hash_ok": True}


_NDARRAY = re.compile(r"NDArray \((\w+)(?:,\s*(.*))?\)")


def _tensor(name: str, text: str) -> dict:
    """('image', 'NDArray (Float16, 1 × 1 × 8 × 8)') -> {"name", "dtype": "float16", "shape": [1, 1, 8, 8]}."""
    m = _NDARRAY.fullmatch(text.strip())
    if not m:
        return {"name": name, "dtype": text, "shape": []}
    dims = [d.strip() for d in (m.group(2) or "").split("×") if d.strip()]
    return {"name": name, "dtype": m.group(1).lower(),
            "shape": [int(d) if d.isdigit() else -1 for d in dims]}


def inspect(path: Path | str) -> dict:
    """`check`, then what coreai-core's own summary says of the program (its native bytecode reader)."""
    s = check(path)
    from coreai.authoring import AIModelAsset
    try:
        summary = AIModelAsset.load(Path(path)).summary(include_statistics=True)
    except Exception as e:  # noqa: BLE001 - the native reader raises RuntimeError and friends on a bad file
        raise Invalid(f"coreai-core cannot read the program: {type(e).__name__}: "
                      f"{(str(e).strip().splitlines() or [''])[0][:200]}") from None
    if summary is None or not list(summary.function_names):
        # coreai-core's reader logs "failed to parse bytecode" and returns an empty summary, while its
        # runtime aborts the whole process on the same bytes (std::terminate): refused here, before it
        raise Invalid("coreai-core reads no function from the program: its bytecode does not parse")
    functions = {}
    for fn in summary.function_names:
        functions[fn] = {"inputs": [_tensor(n, t) for n, t in summary.function_inputs(fn)],
                         "outputs": [_tensor(n, t) for n, t in summary.function_outputs(fn)],
                         "states": [_tensor(n, t) for n, t in summary.function_states(fn)]}
    storage = {str(k): int(v) for k, v in summary.storage_types}
    nbytes = {k: n * _BITS.get(k, 32) / 8 for k, n in storage.items()}
    compressed = {k: b for k, b in nbytes.items() if _BITS.get(k, 32) < 16 and k != "Bool"}
    weights = sum(b for k, b in nbytes.items() if k in _FLOAT) + sum(compressed.values())
    version = getattr(summary, "_compatibility_version", None)
    if version is None:   # a private attribute: fall back to the summary's printed form
        m = re.search(r"_compatibility_version:\s*([\d.]+)", str(summary))
        version = m.group(1) if m else ""
    return {**s, "functions": functions, "operations": {str(k): int(v) for k, v in summary.operation_distribution},
            "storage_elements": storage, "storage_bytes": nbytes, "compute_types": list(summary.compute_types),
            "compressed_weight_share": (sum(compressed.values()) / weights) if weights else 0.0,
            "compatibility_version": str(version),
            "minimum_os": f"{OS_NAMES} {version}" if version else ""}


def facts(path: Path | str) -> dict:
    """For an export record's `info` (and the iOS manifest): the inspection under one key."""
    return {"coreai": inspect(path)}
