"""What Linux can check of an artifact that only Apple's Core ML runs, and the one rule that says so.

    .venv/bin/python -c "from pipeline.filecheck import coreml; print(coreml.inspect_mlpackage('artifacts/digits_cnn/torch__coreml_w8.mlpackage'))"

An `.mlpackage` is a directory: `Manifest.json` names the root model (`model.mlmodel`, a Core ML
protobuf `Model`) and its weights (`weights/weight.bin`, MIL blob storage). Read here with the
standard library only (the benchmark worker and the validator must not import coremltools, which
pulls in TensorFlow and torch): the spec version (= the minimum iOS/macOS it needs), the inputs and
outputs, and the weight bytes per dtype (the int8 share of a weight-quantized model).

"Exported, runs on Apple devices only" (status `apple_only`: a Core ML package, or an ExecuTorch program
with a Core ML delegate, on a host without Apple's Core ML framework) is a member of the policy's "runs
elsewhere" family: `parity.runs_elsewhere(path, fmt)`, declared in `pipeline/policy.py` ELSEWHERE.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from pipeline.filecheck import flatbuf
from pipeline.policy import elsewhere

APPLE = elsewhere("apple_only")     # the family member: its files, delegates and hosts
# Core ML specificationVersion -> the oldest OS that reads it (coremltools' ct.target values)
DEPLOYMENT_TARGET = {4: "iOS 13 / macOS 10.15", 5: "iOS 14 / macOS 11", 6: "iOS 15 / macOS 12",
                     7: "iOS 16 / macOS 13", 8: "iOS 17 / macOS 14", 9: "iOS 18 / macOS 15",
                     10: "iOS 26 / macOS 26"}
# MIL blob storage dtypes (coremltools mil/backend/mil/... BlobDataType)
_BLOB_DTYPES = {1: "float16", 2: "float32", 3: "uint8", 4: "int8", 5: "bfloat16", 6: "int16", 7: "uint16",
                8: "int4", 9: "uint1", 10: "uint2", 11: "uint3", 12: "uint4", 13: "uint6", 14: "int32", 15: "uint32"}
# ArrayFeatureType.ArrayDataType
_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}
MAX_SPEC_BYTES = 64 << 20      # the protobuf is read whole: bound the work on a hostile file
MAX_BLOBS = 100_000
MAX_FILES = 1_000


class Invalid(ValueError):
    pass


def facts(path: Path | str, fmt: str) -> dict:
    """What Linux can check of an artifact Core ML runs, for a record's `info`: the package's spec, or
    the program's delegates and the kernels left outside them (what an iOS app must still link)."""
    if fmt == "mlpackage":
        return {"needs_apple": APPLE.needs(path, fmt), "coreml": inspect_mlpackage(path)}
    if fmt == "pte":
        methods = flatbuf.pte_program(Path(path).read_bytes())
        return {"needs_apple": APPLE.needs(path, fmt),
                "pte_delegates": [{"method": m["name"], **d} for m in methods for d in m["delegates"]],
                "cpu_operators": sorted({op for m in methods for op in m["operators"]})}
    return {}


# ---------------------------------------------------------------- .mlpackage

def manifest(pkg: Path) -> dict:
    """Manifest.json: the root model's path inside the package."""
    f = Path(pkg) / "Manifest.json"
    try:
        man = json.loads(f.read_text())
        entries = man["itemInfoEntries"]
        root = entries[man["rootModelIdentifier"]]
        rel = root["path"]
    except OSError as e:
        raise Invalid(f"no readable Manifest.json ({type(e).__name__})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise Invalid(f"Manifest.json is not a Core ML package manifest ({type(e).__name__}: {e})") from None
    model = Path(pkg) / "Data" / rel
    if not model.is_file():
        raise Invalid(f"Manifest.json names the root model Data/{rel}, which is missing")
    return {"root_model": f"Data/{rel}", "model_file": model, "items": len(entries)}


def _varint(b: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise Invalid("truncated protobuf varint")
        c = b[i]
        v |= (c & 0x7F) << shift
        i += 1
        shift += 7
        if not c & 0x80:
            return v, i


def _fields(b: bytes, start: int = 0, end: int | None = None):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    i, end = start, len(b) if end is None else end
    while i < end:
        key, i = _varint(b, i)
        no, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > end:
                raise Invalid(f"protobuf field {no} runs past the end ({n} bytes)")
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise Invalid(f"protobuf field {no} has unknown wire type {wt}")
        if i > end:
            raise Invalid("truncated protobuf message")
        yield no, wt, v


def _feature(raw: bytes) -> dict:
    """FeatureDescription: name (1), type (3) -> multiArrayType (5): shape (1), dataType (2)."""
    out = {"name": "", "shape": [], "dtype": ""}
    for no, _, v in _fields(raw):
        if no == 1:
            out["name"] = v.decode("utf-8", "replace")
        elif no == 3:
            for tno, _, tv in _fields(v):
                if tno == 5:
                    for ano, awt, av in _fields(tv):
                        if ano == 1 and awt == 2:   # packed int64s
                            j = 0
                            while j < len(av):
                                d, j = _varint(av, j)
                                out["shape"].append(d)
                        elif ano == 1:
                            out["shape"].append(av)
                        elif ano == 2:
                            out["dtype"] = _ARRAY_DTYPES.get(av, str(av))
    return out


def _mil_ops(program: bytes) -> tuple[list[str], dict[str, int]]:
    """MIL Program (MIL.proto): functions (2, map name -> Function: opset 2, block_specializations 3,
    map opset -> Block: operations 3, each Operation: type 1). Returns (opsets, op type -> count)."""
    opsets, ops = [], {}
    for no, _, v in _fields(program):
        if no != 2:
            continue
        for eno, _, fn in _fields(v):           # map entry: key 1, value 2
            if eno != 2:
                continue
            for fno, _, fv in _fields(fn):
                if fno == 2:
                    opsets.append(fv.decode("utf-8", "replace"))
                elif fno == 3:
                    for bno, _, block in _fields(fv):
                        if bno != 2:
                            continue
                        for ono, _, op in _fields(block):
                            if ono == 3:
                                t = next((x.decode("utf-8", "replace") for k, _, x in _fields(op) if k == 1), "?")
                                ops[t] = ops.get(t, 0) + 1
    return sorted(set(opsets)), dict(sorted(ops.items()))


def read_spec(model_file: Path) -> dict:
    """The top of a Core ML `Model` protobuf: specificationVersion (1), description (2: inputs 1,
    outputs 10), and which model type it holds (mlProgram = 502: its MIL operations by type)."""
    size = Path(model_file).stat().st_size
    if size > MAX_SPEC_BYTES:
        raise Invalid(f"model spec of {size} bytes is larger than {MAX_SPEC_BYTES}")
    b = Path(model_file).read_bytes()
    version, inputs, outputs, kinds, opsets, ops = 0, [], [], [], [], {}
    for no, _, v in _fields(b):
        if no == 1:
            version = v
        elif no == 2:
            for dno, _, dv in _fields(v):
                if dno == 1:
                    inputs.append(_feature(dv))
                elif dno == 10:
                    outputs.append(_feature(dv))
        elif no >= 200:
            kinds.append(no)
            if no == 502:
                opsets, ops = _mil_ops(v)
    if not version:
        raise Invalid("model spec has no specificationVersion")
    return {"spec_version": version, "inputs": inputs, "outputs": outputs, "mil_opsets": opsets, "mil_ops": ops,
            "model_type": "mlProgram" if 502 in kinds else (f"field {kinds[0]}" if kinds else "none")}


def weight_bytes(blob_file: Path) -> dict[str, int]:
    """Bytes per dtype in a MIL weight file: a 64-byte header (count, version), then per blob a
    64-byte metadata record (sentinel 0xDEADBEEF, dtype, size, offset) before its data."""
    out: dict[str, int] = {}
    with open(blob_file, "rb") as f:
        head = f.read(64)
        if len(head) < 8:
            raise Invalid(f"{Path(blob_file).name}: no blob storage header")
        count, _version = struct.unpack_from("<II", head)
        if count > MAX_BLOBS:
            raise Invalid(f"{Path(blob_file).name}: {count} blobs is more than {MAX_BLOBS}")
        end = Path(blob_file).stat().st_size
        pos = 64
        for k in range(count):
            f.seek(pos)
            meta = f.read(64)
            if len(meta) < 24:
                raise Invalid(f"{Path(blob_file).name}: blob {k} metadata is truncated")
            sentinel, dtype, size, offset = struct.unpack_from("<IIQQ", meta)
            if sentinel != 0xDEADBEEF or offset + size > end:
                raise Invalid(f"{Path(blob_file).name}: blob {k} metadata is corrupt")
            name = _BLOB_DTYPES.get(dtype, f"type{dtype}")
            out[name] = out.get(name, 0) + size
            pos = (offset + size + 63) // 64 * 64
    return out


def inspect_mlpackage(pkg: Path | str) -> dict:
    """Everything checkable without Core ML: manifest, spec, deployment target, weights by dtype."""
    pkg = Path(pkg)
    if not pkg.is_dir():
        raise Invalid("an .mlpackage must be a directory")
    man = manifest(pkg)
    spec = read_spec(man["model_file"])
    weights: dict[str, int] = {}
    for blob in sorted((man["model_file"].parent / "weights").glob("*.bin")):
        for k, v in weight_bytes(blob).items():
            weights[k] = weights.get(k, 0) + v
    total = sum(weights.values())
    low = sum(v for k, v in weights.items() if k in ("int8", "uint8", "int4", "uint4"))
    # fp16 weights (or fp16 scales of int8 weights) = an fp16 program; coremltools inserts no fp16 otherwise
    precision = "float16" if weights.get("float16") else "float32" if weights.get("float32") else ""
    # every member and its size: shows what ships beside the model (e.g. a debug handle mapping)
    files = {str(f.relative_to(pkg)): f.stat().st_size for f in sorted(pkg.rglob("*"))[:MAX_FILES] if f.is_file()}
    return {"root_model": man["root_model"], "model_type": spec["model_type"], "compute_precision": precision,
            "files": files,
            "spec_version": spec["spec_version"],
            "minimum_deployment_target": DEPLOYMENT_TARGET.get(spec["spec_version"],
                                                              f"spec version {spec['spec_version']}"),
            "inputs": spec["inputs"], "outputs": spec["outputs"], "mil_opsets": spec["mil_opsets"],
            "mil_ops": spec["mil_ops"], "weight_bytes_by_dtype": weights,
            "weights_int8_share": round(low / total, 4) if total else 0.0}
