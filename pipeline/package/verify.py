"""Run one artifact in one runtime on the samples, in a worker process of that runtime's own Python
(the old tflite-runtime lives in `.venv-tflite-runtime`): does it load, what does it declare
(inputs/outputs, operators), and what does it compute.

    res = verify.run(artifact, "litert", samples_npz, eval_npz, out_dir)   # parent side
    many = verify.run_many([(a, "litert"), (b, "executorch")], ...)      # one worker per runtime
    python -m pipeline.package.verify JOB.json    # the worker, through pipeline/workers.py

The worker imports only numpy and the runtime adapter. Each sample is fed as a batch of one (the
artifacts are exported with a batch-1 example); outputs go to an .npz as out_<k> / eval_out_<k>.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

TIMEOUT_S = 900.0


def _outputs(adapter, handle, arrays: list) -> list:
    per_sample = [adapter.run(handle, [a[i:i + 1] for a in arrays]) for i in range(len(arrays[0]))]
    return [np.concatenate([s[k] for s in per_sample]) for k in range(len(per_sample[0]))]


def _read(path: str) -> list:
    with np.load(path) as z:
        return [z[f"in_{i}"] for i in range(len(z.files))]


def one(job: dict, params: dict) -> dict:
    """The worker side (through `pipeline/workers.py`): load, describe, run the samples."""
    from pipeline import runtimes
    adapter = runtimes.get(job["runtime"])
    result: dict = {"status": "ok"}
    try:
        handle = adapter.load(job["artifact"], 1)
    except Exception as e:  # noqa: BLE001 - "does this runtime load it" is the finding
        return {"status": "failed", "error": f"{job['runtime']} cannot load it: {type(e).__name__}: "
                f"{(str(e).strip().splitlines() or [''])[0][:300]}"}
    try:
        result["describe"] = adapter.describe(handle)
        result["version"] = adapter.version()
        arrays = {f"out_{k}": o for k, o in enumerate(_outputs(adapter, handle, _read(job["samples"])))}
        if job.get("eval"):
            arrays.update({f"eval_out_{k}": o for k, o in enumerate(_outputs(adapter, handle, _read(job["eval"])))})
        np.savez(job["outputs"], **arrays)
    except Exception as e:  # noqa: BLE001
        result = {"status": "failed", "error": f"{job['runtime']} loads it but running the samples failed: "
                  f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}",
                  "describe": result.get("describe"), "version": result.get("version", "")}
    return result


def run(artifact: Path, runtime: str, samples_npz: Path, eval_npz: Path | None, out_dir: Path) -> dict:
    """{"status", "error", "describe", "version", "outputs": [arrays], "eval_outputs": [arrays]}; never raises
    for what the runtime does (a crash, a hang: a `failed` result naming the signal or the timeout)."""
    return run_many([(artifact, runtime)], samples_npz, eval_npz, out_dir)[0]


def run_many(jobs: list[tuple[Path, str]], samples_npz: Path, eval_npz: Path | None, out_dir: Path) -> list[dict]:
    """`run` for several (artifact, runtime) pairs, in their order: the artifacts of one runtime share
    one worker (its import paid once), and a crash or hang costs only the artifact it happened on (the
    worker protocol's "resume": a fresh worker goes on with the rest)."""
    from pipeline import fsutil, runtimes, sandbox, workers
    out: list[dict | None] = [None] * len(jobs)
    by_rt: dict[str, list[int]] = {}
    for i, (_, runtime) in enumerate(jobs):
        adapter = runtimes.get(runtime)
        if not adapter.available():
            out[i] = {"status": "skipped", "error": f"runtime {runtime} is not installed: {adapter.INSTALL_HINT}"}
        else:
            by_rt.setdefault(runtime, []).append(i)
    if not by_rt:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{fsutil.TMP_PREFIX}verify-", dir=out_dir) as tmp:   # a kill leaves it to run_lock
        for runtime, idx in by_rt.items():
            items = tuple({"id": i, "artifact": str(jobs[i][0]), "runtime": runtime, "samples": str(samples_npz),
                           "eval": str(eval_npz) if eval_npz else "", "outputs": str(Path(tmp) / f"out-{i}.npz")}
                          for i in idx)
            # the artifacts are made from the user's model: each runtime opens them in the OS sandbox
            box = sandbox.Sandbox(reads=tuple({str(jobs[i][0]) for i in idx}) + tuple(
                str(p) for p in (samples_npz, eval_npz) if p), writes=(tmp,))
            results = workers.run(workers.Job("pipeline.package.verify", items, python=runtimes.get(runtime).python(),
                                              timeout_s=TIMEOUT_S, after_death="resume", sandbox=box))
            for item in items:
                res = results[item["id"]]
                if res.get("status") != "ok" and "death" in res:
                    res = {"status": "failed", "error": f"{runtime}: {res['error']}"}
                if Path(item["outputs"]).exists():
                    with np.load(item["outputs"]) as z:
                        res["outputs"] = [z[f"out_{k}"] for k in range(sum(f.startswith("out_") for f in z.files))]
                        res["eval_outputs"] = [z[f"eval_out_{k}"]
                                               for k in range(sum(f.startswith("eval_out_") for f in z.files))]
                out[item["id"]] = res
    return out


if __name__ == "__main__":
    from pipeline import workers
    sys.exit(workers.serve(one))
