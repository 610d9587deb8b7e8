"""Batch worker for fuzzing: the real measurement (`pipeline.bench.worker.measure_artifact`) on many files in one process.

    python -m pipeline.tools.fuzz_worker JOB.json        # started by pipeline.tools.fuzz through pipeline/workers.py

Starting one worker per file costs an import of the runtime (ExecuTorch/torch ~2 s) per file; this
loads the runtime once and walks the items (one measurement job per mutant). The worker protocol
records which mutant a crash or hang happened on, and a fresh worker resumes after it.
Imports only numpy and the runtime, like `pipeline/bench/worker.py`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline import workers


def one(item: dict, params: dict) -> dict:
    """A rejected file raises: `workers.serve` makes that the item's one-line error (the expected outcome).
    An item with "source" is a package source (`fuzz_sources.py`): pre-checked and loaded as `package`
    does, then run once on zeros."""
    if "source" in item:
        return _source(item["source"])
    from pipeline.bench.worker import measure_artifact
    r = measure_artifact(item)
    return {"status": r["status"], "nan_out": bool(r["info"].get("outputs_have_nan_or_inf"))}


def _source(s: dict) -> dict:
    import numpy as np

    from pipeline.package import sources
    loaded = sources.load(sources.Source(s["kind"], Path(s["path"])))
    xs = [np.zeros([d if d else 1 for d in i.shape], i.dtype) for i in loaded.inputs]
    return {"status": "ok", "outputs": len(loaded.run(xs))}


if __name__ == "__main__":
    sys.exit(workers.serve(one))
