"""Batch worker for fuzzing: the real measurement (`pipeline.bench.worker.measure_artifact`) on many files in one process.

    python -m pipeline.tools.fuzz_worker JOBS.jsonl PROGRESS.jsonl START

Starting one worker per file costs an import of the runtime (ExecuTorch/torch ~2 s) per file; this
loads the runtime once and walks the jobs from index START. Before each job it writes
{"i": i, "start": true} to PROGRESS (flushed), after it the result; so when a file crashes this
process, the parent (`pipeline.tools.fuzz`) knows which one did, counts it, and restarts from the next.
Imports only numpy and the runtime, like `pipeline/bench/worker.py`.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    jobs_path, progress_path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(jobs_path) as f:
        jobs = [json.loads(line) for line in f if line.strip()]
    sys.path.insert(0, jobs[0]["root"])
    from pipeline.procutil import die_with_parent
    die_with_parent()
    from pipeline.bench.worker import describe_error, measure_artifact
    with open(progress_path, "a") as out:
        for i in range(start, len(jobs)):
            out.write(json.dumps({"i": i, "start": True}) + "\n")
            out.flush()
            try:
                r = measure_artifact(jobs[i])
                res = {"status": r["status"], "nan_out": bool(r["info"].get("outputs_have_nan_or_inf"))}
            except Exception as e:  # noqa: BLE001 - a rejected file is the expected outcome
                res = {"status": "failed", "error": describe_error(e)}
            out.write(json.dumps({"i": i, **res}) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
