"""Which artifacts the device tests run: session fixtures and the pipeline's artifacts/ tree."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from device import RUNTIME_OF_EXT

ROOT = Path(__file__).resolve().parent.parent

FIXTURE_STEMS = ("keras__tflite_fp32.tflite", "keras__tflite_int8.tflite",
                 "torch__et_xnnpack_fp32.pte", "torch__et_xnnpack_int8.pte")
FIXTURE_MODEL = "device_fixture"


@dataclass(frozen=True)
class Case:
    """One artifact: `root` is the folder that `record['artifact']` is relative to."""
    origin: str            # "fixture" | "pipeline"
    root: str
    rel: str               # artifacts/<model>/<file>
    record: str = ""       # path of the .record.json ("" for fixtures not made yet)

    @property
    def id(self) -> str:
        return f"{self.origin}:{Path(self.rel).parent.name}/{Path(self.rel).name}"


def _record_dict(path: Path) -> dict:
    d = json.loads(path.read_text())
    return d.get("record", d)  # the pipeline wraps records as {"key": ..., "record": {...}}


def pipeline_cases() -> list[Case]:
    root = Path(os.environ.get("DEVICE_ARTIFACTS_ROOT", ROOT))
    cases = []
    for rec in sorted(root.glob("artifacts/*/*.record.json")):
        try:
            d = _record_dict(rec)
        except (OSError, ValueError):
            continue
        rel = d.get("artifact") or str(rec.with_name(rec.name[: -len(".record.json")]).relative_to(root))
        # a Core ML .pte needs an Apple build of ExecuTorch: nothing to run on emulated ARM64 Linux
        if d.get("status") == "ok" and Path(rel).suffix in RUNTIME_OF_EXT and not d.get("info", {}).get("needs_apple"):
            cases.append(Case("pipeline", str(root), rel, str(rec)))
    return cases


def all_cases() -> list[Case]:
    fixtures = [Case("fixture", "", f"artifacts/{FIXTURE_MODEL}/{s}") for s in FIXTURE_STEMS]
    return fixtures + pipeline_cases()
