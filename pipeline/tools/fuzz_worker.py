"""Batch worker for fuzzing: the real measurement (`pipeline.bench.worker.measure_artifact`) on many files in one process.

    python -m pipeline.tools.fuzz_worker JOB.json        # started by pipeline.tools.fuzz through pipeline/workers.py

Starting one worker per file costs an import of the runtime (ExecuTorch/torch ~2 s) per file; this
loads the runtime once and walks the items (one measurement job per mutant). The worker protocol
records which mutant a crash or hang happened on, and a fresh worker resumes after it.
Imports only numpy and the runtime, like `pipeline/bench/worker.py`.
"""
from __future__ import annotations

import sys

from pipeline import workers


def one(item: dict, params: dict) -> dict:
    """A rejected file raises: `workers.serve` makes that the item's one-line error (the expected outcome)."""
    from pipeline.bench.worker import measure_artifact
    r = measure_artifact(item)
    return {"status": r["status"], "nan_out": bool(r["info"].get("outputs_have_nan_or_inf"))}


if __name__ == "__main__":
    sys.exit(workers.serve(one))
