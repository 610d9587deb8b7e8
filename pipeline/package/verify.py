"""Run one artifact in one runtime on the samples, in a worker process of that runtime's own Python
(the old tflite-runtime lives in `.venv-tflite-runtime`): does it load, what does it declare
(inputs/outputs, operators), and what does it compute.

    res = verify.run(artifact, "litert", samples_npz, eval_npz, out_dir)   # parent side
    python -m pipeline.package.verify JOB.json                              # the worker

The worker imports only numpy and the runtime adapter. Each sample is fed as a batch of one (the
artifacts are exported with a batch-1 example); outputs go to an .npz as out_<k> / eval_out_<k>.
"""
from __future__ import annotations

import json
import os
import subprocess
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


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    sys.path.insert(0, job["root"])
    from pipeline.procutil import die_with_parent
    die_with_parent()
    from pipeline import runtimes
    adapter = runtimes.get(job["runtime"])
    result: dict = {"status": "ok"}
    try:
        handle = adapter.load(job["artifact"], 1)
    except Exception as e:  # noqa: BLE001 - "does this runtime load it" is the finding
        result = {"status": "failed", "error": f"{job['runtime']} cannot load it: {type(e).__name__}: "
                  f"{(str(e).strip().splitlines() or [''])[0][:300]}"}
    else:
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
    Path(job["result"]).write_text(json.dumps(result, default=str))
    return 0


def run(artifact: Path, runtime: str, samples_npz: Path, eval_npz: Path | None, out_dir: Path) -> dict:
    """{"status", "error", "describe", "version", "outputs": [arrays], "eval_outputs": [arrays]}; never raises
    for what the runtime does (a crash is a `failed` result with the exit code)."""
    from pipeline import fsutil, procutil, runtimes
    adapter = runtimes.get(runtime)
    if not adapter.available():
        return {"status": "skipped", "error": f"runtime {runtime} is not installed: {adapter.INSTALL_HINT}"}
    python = str(getattr(adapter, "PYTHON", sys.executable))
    with tempfile.TemporaryDirectory(prefix="mb-verify-", dir=out_dir) as tmp:
        job = {"root": str(fsutil.ROOT), "artifact": str(artifact), "runtime": runtime,
               "samples": str(samples_npz), "eval": str(eval_npz) if eval_npz else "",
               "outputs": str(Path(tmp) / "out.npz"), "result": str(Path(tmp) / "result.json")}
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **procutil.child_env()}
        proc = subprocess.Popen([python, "-m", "pipeline.package.verify", str(Path(tmp) / "job.json")],
                                cwd=fsutil.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            procutil.kill_group(proc.pid)
            proc.communicate()
            return {"status": "failed", "error": f"{runtime}: verification timed out after {TIMEOUT_S:.0f}s"}
        except BaseException:
            procutil.kill_group(proc.pid)
            raise
        if not Path(job["result"]).exists():
            tail = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()][-1:]
            return {"status": "failed", "error": f"{runtime}: worker exited with code {proc.returncode}"
                    + (f"; last output: {tail[0][:200]}" if tail else "")}
        res = json.loads(Path(job["result"]).read_text())
        if Path(job["outputs"]).exists():
            with np.load(job["outputs"]) as z:
                res["outputs"] = [z[f"out_{k}"] for k in range(sum(f.startswith("out_") for f in z.files))]
                res["eval_outputs"] = [z[f"eval_out_{k}"] for k in range(sum(f.startswith("eval_out_") for f in z.files))]
        return res


if __name__ == "__main__":
    sys.exit(main())
