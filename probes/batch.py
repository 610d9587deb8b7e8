"""Run a list of items through a worker process that may crash natively, and still get a result
for every item.

The worker (`python -m MODULE JOB.json`) appends one JSON line per item to job["progress"]:
`{"start": id}` before it touches the item and `{"done": id, "result": {...}}` after. If the worker
dies (signal, exit code, timeout), the item it had started is charged with that death and a fresh
worker resumes with the items after it: one bad operator costs one result, not the batch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pipeline import fsutil
from pipeline.bench.harness import _describe_exit


def _read_progress(path: Path) -> tuple[dict, str | None]:
    done, started = {}, None
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash
            if "start" in msg:
                started = msg["start"]
            elif "done" in msg:
                done[msg["done"]] = msg["result"]
                started = None
    return done, started


def run_batch(module: str, job: dict, items: list[dict], python: str, timeout_s: float) -> dict[str, dict]:
    """items: dicts with a unique "id". Returns id -> result dict (status ok/failed, error, ...)."""
    results: dict[str, dict] = {}
    remaining = list(items)
    while remaining:
        with tempfile.TemporaryDirectory(prefix="mb-probe-") as tmp:
            progress = Path(tmp) / "progress.jsonl"
            job_file = Path(tmp) / "job.json"
            job_file.write_text(json.dumps({**job, "items": remaining, "progress": str(progress)}))
            env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
            log_file = Path(tmp) / "worker.log"  # a file, not a pipe: chatty converters cannot block on it
            with open(log_file, "wb") as log:
                proc = subprocess.Popen([python, "-m", module, str(job_file)], cwd=fsutil.ROOT, env=env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                death = _wait(proc, progress, timeout_s)
            out = log_file.read_bytes()
            done, started = _read_progress(progress)
        results.update(done)
        remaining = [it for it in remaining if it["id"] not in done]
        if not remaining:
            break
        tail = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()][-1:]
        blame = started if started is not None else remaining[0]["id"]
        results[blame] = {"status": "failed", "error": (death or "worker exited early") +
                          (f"; last output: {tail[0][:200]}" if tail else "")}
        remaining = [it for it in remaining if it["id"] != blame]
    return results


def _wait(proc: subprocess.Popen, progress: Path, timeout_s: float) -> str:
    """Wait for the worker; kill it when one item takes longer than timeout_s (no progress line)."""
    last_size, last_change = -1, time.monotonic()
    while proc.poll() is None:
        size = progress.stat().st_size if progress.exists() else 0
        if size != last_size:
            last_size, last_change = size, time.monotonic()
        elif time.monotonic() - last_change > timeout_s:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"worker timed out after {timeout_s:.0f}s on one item (killed)"
        time.sleep(0.2)
    return _describe_exit(proc.returncode) if proc.returncode else ""


class Progress:
    """The worker side of the protocol."""

    def __init__(self, path: str):
        self.path = path

    def _write(self, msg: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(msg, default=_default) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def start(self, item_id: str) -> None:
        self._write({"start": item_id})

    def done(self, item_id: str, result: dict) -> None:
        self._write({"done": item_id, "result": result})


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    return str(o)
