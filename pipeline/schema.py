"""The one results schema: every stage (train, export, bench, probe, device) emits `Record`s.

A record is one artifact x one measurement. Fixed identity fields say *what* was measured;
`metrics` holds the numbers (names documented in docs/schema.md); `info` holds
non-numeric facts (delegation summary, warnings, package versions). Nothing re-parses logs:
the report reads these records only.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pipeline.policy import STATUSES  # noqa: F401 (what each status means: pipeline/policy.py)

SCHEMA_VERSION = 1
KINDS = ("train", "export", "bench", "probe", "device", "pipeline", "quant_debug", "compat")


def time_metric(phase: str) -> str:
    """The project-wide metric name of one phase's seconds: `time_<phase>_s` (time_export_s,
    time_train_torch_s, ...). Totals keep their names (export_seconds, train_seconds)."""
    return f"time_{phase}_s"


@dataclass
class Record:
    kind: str                      # one of KINDS
    model: str                     # registry name, or a file path for bring-your-own-model
    status: str                    # one of STATUSES
    source: str = ""               # twin the artifact comes from: torch | keras | keras_tw
    path: str = ""                 # export path name (registry key), e.g. "tflite_int8"
    format: str = ""               # tflite | pte | ptl | onnx
    framework: str = ""            # pytorch | tensorflow
    quantization: str = ""         # fp32 | fp16 | dynamic_int8 | int8 | ...
    runtime: str = ""              # runtime adapter name, e.g. "litert"
    profile: str = ""              # device profile name for bench records
    threads: int = 0
    device: str = "host"           # host | emulated-arm64
    artifact: str = ""             # artifact path relative to the project root
    artifact_sha256: str = ""
    error: str = ""                # first line of the error when status != ok
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"record kind {self.kind!r} not in {KINDS}")
        if self.status not in STATUSES:
            raise ValueError(f"record status {self.status!r} not in {STATUSES}")
        if self.status != "ok" and not self.error:
            raise ValueError(f"record {self.model}/{self.path} has status {self.status} but no error text")

    def key(self) -> tuple:
        """Identity of a measurement: a newer record with the same key replaces an older one."""
        return (self.kind, self.model, self.source, self.path, self.runtime, self.profile,
                self.threads, self.device, self.info.get("probe", ""))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown record fields {sorted(unknown)}")
        return cls(**d)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The error's first non-empty line, prefixed with its type: what a record stores."""
    if isinstance(exc, BaseException):
        text = str(exc).strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        msg = f"{type(exc).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")
    else:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        msg = lines[0].strip() if lines else "unknown error"
    return msg[:limit]


def read_record_file(path: Path) -> Record | None:
    """One cached record (a measurement cache entry), or None when missing or unreadable (a miss)."""
    try:
        return Record.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_records(path: Path) -> list[Record]:
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(Record.from_dict(json.loads(line)))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}:{n}: bad record: {e}") from None
    return out


def merge(old: Iterable[Record], new: Iterable[Record]) -> list[Record]:
    """Newer records replace older ones with the same key; order is kept stable."""
    by_key: dict[tuple, Record] = {}
    for r in list(old) + list(new):
        by_key[r.key()] = r
    return list(by_key.values())


def keep_last_good(old: Iterable[Record], new: list[Record]) -> tuple[list[Record], list[Record]]:
    """A failed measurement of the same file must not replace a good one: where a new `bench`/`device`
    record failed and the stored one with the same key and artifact bytes is ok, the stored one stays,
    with the failed attempt noted in `info["failed_attempt"]`. Returns (records to merge in, kept)."""
    good = {r.key(): r for r in old if r.status == "ok" and r.kind in ("bench", "device")}
    out, kept = [], []
    for r in new:
        g = good.get(r.key())
        if r.status == "failed" and g is not None and g.artifact_sha256 == r.artifact_sha256:
            g = dataclasses.replace(g, info={**g.info, "failed_attempt": {"error": r.error, "created": r.created}})
            out.append(g)
            kept.append(g)
        else:
            out.append(r)
    return out, kept
