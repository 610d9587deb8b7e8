"""One identity for an exported artifact, (model, source twin, export path), and one reader of the
export records. Every file name, label and sidecar derives from `ArtifactId`; every stage that needs
"what was exported" reads it through `export_records` / `export_record`; every stored artifact path is
resolved by `resolve` (one base: the project root).

    aid = ArtifactId("digits_cnn", "keras", "tflite_int8")
    aid.stem                       # keras__tflite_int8
    aid.label                      # digits_cnn/keras__tflite_int8
    aid.file(artifacts, "tflite")  # artifacts/digits_cnn/keras__tflite_int8.tflite
    aid.sidecar(artifacts)         # artifacts/digits_cnn/keras__tflite_int8.record.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil
from pipeline.schema import Record

FRAMEWORK_OF_SOURCE = {"torch": "pytorch", "keras": "tensorflow", "keras_tw": "tensorflow"}


@dataclass(frozen=True)
class ArtifactId:
    model: str
    source: str     # twin: torch | keras | keras_tw ("" for a user's own file)
    path: str       # export path name ("user" for a user's own file)

    @classmethod
    def of(cls, r: Record) -> "ArtifactId":
        return cls(r.model, r.source, r.path)

    @classmethod
    def parse(cls, model: str, stem: str) -> "ArtifactId":
        """The inverse of `stem` (a name typed on the command line: `keras__tflite_int8`)."""
        source, sep, path = stem.partition("__")
        return cls(model, source, path) if sep else cls(model, "", stem)

    @property
    def stem(self) -> str:
        return f"{self.source}__{self.path}" if self.source else self.path

    @property
    def label(self) -> str:
        return f"{self.model}/{self.stem}"

    @property
    def framework(self) -> str:
        return FRAMEWORK_OF_SOURCE.get(self.source, "")

    def folder(self, artifacts: Path) -> Path:
        return Path(artifacts) / self.model

    def file(self, artifacts: Path, suffix: str) -> Path:
        """The artifact (`suffix` = its format) or a file derived from it (`etrecord`, `litert.out.npz`)."""
        return self.folder(artifacts) / f"{self.stem}.{suffix}"

    def sidecar(self, artifacts: Path) -> Path:
        """The export record and its cache key, beside the artifact."""
        return self.file(artifacts, "record.json")


def stored(path: Path) -> str:
    """How a record stores an artifact path: relative to the project root when inside it."""
    try:
        return str(Path(path).resolve().relative_to(fsutil.ROOT))
    except ValueError:
        return str(Path(path).resolve())


def resolve(artifact: str) -> Path:
    """A record's `artifact` as a file: the one base for relative paths is the project root (what
    `stored` wrote), whatever the --artifacts folder or the working directory."""
    p = Path(artifact)
    return p if p.is_absolute() else fsutil.ROOT / p


@dataclass(frozen=True)
class Sidecar:
    key: str
    record: Record


def read_sidecar(f: Path) -> Sidecar | None:
    """A sidecar file, or None when missing or unreadable (an unreadable cache entry is a miss)."""
    try:
        saved = json.loads(Path(f).read_text())
        return Sidecar(str(saved.get("key", "")), Record.from_dict(saved["record"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_sidecar(artifacts: Path, aid: ArtifactId, key: str, record: Record) -> None:
    fsutil.write_json_atomic(aid.sidecar(artifacts), {"key": key, "record": json.loads(record.to_json())})


def fresh_record(artifacts: Path, aid: ArtifactId, key: str) -> Record | None:
    """The export cache hit: the sidecar's record when its key is `key` and, for an `ok` record, its
    artifact is still there with the bytes the record names; else None (redo the export)."""
    sc = read_sidecar(aid.sidecar(artifacts))
    if sc is None or sc.key != key:
        return None
    if sc.record.status == "ok":
        f = ok_file(sc.record)
        if f is None or fsutil.sha256_file(f) != sc.record.artifact_sha256:
            return None
    return sc.record


def export_record(artifacts: Path, aid: ArtifactId) -> Record | None:
    sc = read_sidecar(aid.sidecar(artifacts))
    return sc.record if sc else None


def export_records(artifacts: Path, model: str, sources_of=None) -> list[Record]:
    """The model's train record and every export record under `artifacts`. `sources_of(path) ->
    twins or None` drops sidecars of a twin a path no longer takes (left over from older code)."""
    folder = Path(artifacts) / model
    out = []
    meta = folder / "train" / "meta.json"
    if meta.exists():
        out.append(Record.from_dict(json.loads(meta.read_text())["record"]))
    for f in sorted(folder.glob("*.record.json")):
        if f.name.startswith("."):   # never a half-written temp (see fsutil.atomic_path)
            continue
        sc = read_sidecar(f)
        if sc is None:
            continue
        sources = sources_of(sc.record.path) if sources_of else None
        if sources is not None and sc.record.source not in sources:
            continue
        out.append(sc.record)
    return out


def ok_file(r: Record | None) -> Path | None:
    """The artifact file of an `ok` export record whose file is still there, else None."""
    if r is None or r.status != "ok" or not r.artifact:
        return None
    f = resolve(r.artifact)
    return f if f.exists() else None
