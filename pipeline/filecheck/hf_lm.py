"""A user's Hugging Face-style LM folder, checked before any library reads it: nothing in it may run code.

    folder = hf_lm.check(Path("my_lm"))     # BadModelFile: one line naming the file and what is wrong

Accepted: `config.json` (a JSON object of at most 1 MB with no `auto_map`: custom modelling code is never
run), weights as safetensors only (`model.safetensors`, or the shards `model.safetensors.index.json`
names; each file's header is read and checked against its size: dtypes, shapes and offsets, so the
work done on a file is bounded by its size), `tokenizer.json` (the `tokenizers` JSON format, data
only). Pickle-based weights (`pytorch_model.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`: loading them would
unpickle, i.e. run code) are never opened: a folder with only those is refused; beside safetensors
they are ignored, and the check says so. A link out of the folder is refused.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from pipeline.filecheck.savedmodel import folder_files
from pipeline.filecheck.validate import BadModelFile

MAX_JSON = 1 << 20                 # config.json, the shard index
MAX_TOKENIZER = 64 << 20           # tokenizer.json (a 250k-token vocabulary with merges is ~20 MB)
MAX_HEADER = 100 << 20             # a safetensors header (names, dtypes, shapes, offsets)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class LMFolder:
    path: Path
    config: dict
    weights: tuple[Path, ...]        # the safetensors files the model loads
    tokenizer: Path
    files: tuple[Path, ...]          # every regular file of the folder (its content hash)
    ignored: tuple[str, ...] = ()    # pickle files beside the safetensors: never opened

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["?"])[0]


def looks_like(path: Path) -> bool:
    """A folder that is meant as a Hugging Face model (what `package` routes here)."""
    return Path(path).is_dir() and (Path(path) / "config.json").exists()


def check(folder: Path) -> LMFolder:
    folder = Path(folder)
    files = folder_files(folder)      # a link out of the folder: refused by name
    names = {f.relative_to(folder).as_posix() for f in files}
    config = _json(folder / "config.json", MAX_JSON)
    if not isinstance(config, dict):
        raise BadModelFile(f"{folder / 'config.json'}: not a JSON object")
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise BadModelFile(f"{folder / 'config.json'}: names custom modelling code (auto_map); refused: code in a "
                           "model folder is never run here")
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
    weights = _weights(folder, names)
    if not weights:
        what = (f"only pickle weights ({', '.join(pickles)}): refused, loading them would unpickle (run code); "
                "save the model with safetensors (model.save_pretrained(..., safe_serialization=True))"
                if pickles else "no model.safetensors (or model.safetensors.index.json) in it")
        raise BadModelFile(f"{folder}: {what}")
    for w in weights:
        check_safetensors(w)
    tok = folder / "tokenizer.json"
    if "tokenizer.json" not in names:
        raise BadModelFile(f"{folder}: no tokenizer.json beside config.json (the bundle ships the tokenizer; a "
                           "sentencepiece-only tokenizer.model: save it with a fast tokenizer's save_pretrained)")
    if not isinstance(_json(tok, MAX_TOKENIZER), dict):
        raise BadModelFile(f"{tok}: not a JSON object (a `tokenizers` tokenizer.json)")
    return LMFolder(folder, config, tuple(weights), tok, tuple(files), tuple(pickles))


def _json(f: Path, limit: int):
    if not f.is_file():
        raise BadModelFile(f"{f}: missing")
    if f.stat().st_size > limit:
        raise BadModelFile(f"{f}: {f.stat().st_size:,} bytes, more than the {limit:,} read for it; refused")
    try:
        return json.loads(f.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise BadModelFile(f"{f}: not valid JSON ({str(e).splitlines()[0][:120]})") from None


def _weights(folder: Path, names: set[str]) -> list[Path]:
    if "model.safetensors.index.json" in names:
        index = _json(folder / "model.safetensors.index.json", MAX_JSON)
        shards = sorted(set((index.get("weight_map") or {}).values())) if isinstance(index, dict) else []
        if not shards:
            raise BadModelFile(f"{folder / 'model.safetensors.index.json'}: names no shard (weight_map)")
        bad = [s for s in shards if s not in names or "/" in s or not s.endswith(".safetensors")]
        if bad:
            raise BadModelFile(f"{folder / 'model.safetensors.index.json'}: shard {bad[0]!r} is not a .safetensors "
                               "file of this folder")
        return [folder / s for s in shards]
    return [folder / "model.safetensors"] if "model.safetensors" in names else []


def check_safetensors(f: Path) -> None:
    """Header within the file, every tensor's dtype known and its bytes = its shape's, inside the data."""
    size = f.stat().st_size
    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise BadModelFile(f"{f}: {size} bytes, too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER):
            raise BadModelFile(f"{f}: its header claims {n:,} bytes of a {size:,}-byte file; not a safetensors file")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadModelFile(f"{f}: the safetensors header is not JSON; not a safetensors file") from None
    if not isinstance(header, dict):
        raise BadModelFile(f"{f}: the safetensors header is not a JSON object")
    data = size - 8 - n
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(t, dict) or t.get("dtype") not in DTYPE_BYTES or not isinstance(t.get("shape"), list) \
                or not isinstance(t.get("data_offsets"), list) or len(t["data_offsets"]) != 2:
            raise BadModelFile(f"{f}: tensor {name!r}: not a safetensors entry (dtype, shape, data_offsets)")
        count = 1
        for d in t["shape"]:
            if not isinstance(d, int) or d < 0:
                raise BadModelFile(f"{f}: tensor {name!r}: shape {t['shape']} is not a list of sizes")
            count *= d
        begin, end = t["data_offsets"]
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data) \
                or end - begin != count * DTYPE_BYTES[t["dtype"]]:
            raise BadModelFile(f"{f}: tensor {name!r}: {t['dtype']} {t['shape']} does not fit its bytes "
                               f"{t['data_offsets']} (data {data:,} bytes); truncated or not a safetensors file")
