"""A failure that belongs to the toolchain, not to the model, established once per toolchain version set.

    error = toolchain.probed("et_coreai", probe, versions=("executorch", "coreai-core", ...), code=[__file__])
    if error:                        # the probe model failed: every model would, with this same error
        raise toolchain.Established(error, note)
    ...                              # "" = the toolchain works: export the model for real

Why: ExecuTorch 1.5.1's Core AI delegate fails on every partition it converts with coreai-core 1.0.0b3
(`AIProgram.get_graph` became private), after paying for a whole lowering: about a third of the Core AI
export time of the zoo went into re-establishing that one fact per model. A probe model (a few ops, the
same steps) shows it once; the outcome is kept in `.cache/toolchain/`, keyed by the versions of the
libraries involved and by the code of the probe, so a new toolchain (a fixed one included) is probed
again and then exported for real.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from pipeline import deps, fsutil
from pipeline.deps import versions  # noqa: F401 ("dist==version" as installed; the records name them)

CACHE = fsutil.ROOT / ".cache" / "toolchain"


class Established(Exception):
    """A failure shown once on a probe model with this toolchain, not by exporting this model: the
    driver (`export/run.py`) records it `failed` with the toolchain's own error line and `note` (how it
    was established) as `info["established_by"]`."""

    def __init__(self, error: str, note: str):
        super().__init__(error)
        self.error, self.note = error, note


def key(dists, code) -> str:
    """What a probe's outcome depends on: the library versions and the code that runs the probe (with every
    project module it imports: pipeline/deps.py, the one cache-key helper)."""
    return deps.key([Path(__file__), *map(Path, code)], judging=False, extra_libs=dists)


def probed(name: str, probe: Callable[[], None], dists, code, cache: Path = CACHE) -> str:
    """"" when `probe()` runs through with the installed toolchain, else the error line it ends with (as
    a record stores it). Run once per `key(dists, code)`, then read back from `cache`; a cache that cannot
    be written (a read-only project in the sandbox) only means the probe runs again next time."""
    k = key(dists, code)
    f = cache / f"{name}-{k[:16]}.json"
    try:
        kept = json.loads(f.read_text())
        if kept.get("key") == k:
            return kept["error"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    from export.run import error_line
    try:
        probe()
        error = ""
    except Exception as e:  # noqa: BLE001 - whatever the toolchain raised is the finding
        error = error_line(e)
    try:
        fsutil.write_json_atomic(f, {"name": name, "key": k, "versions": versions(dists), "error": error})
    except OSError:
        pass
    return error
