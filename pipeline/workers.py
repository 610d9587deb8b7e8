"""The one crash-isolating worker protocol: items through a child process that may crash natively,
hang or be killed, and still one result per item.

    job = workers.Job("probes.run_worker", items=({"id": "conv2d/tflite_fp32/litert", ...}, ...),
                      params={"runtime": "litert"}, timeout_s=120, after_death="resume")
    results = workers.run(job)      # id -> result dict, whatever the worker did

    # the child, `python -m probes.run_worker JOB.json`:
    sys.exit(workers.serve(lambda item, params: {"status": "ok", ...}))

Parent side (`run`): the child runs in a session of its own (a crash or a kill reaches only its process
group) with `procutil.child_env()` (it dies with the parent, even a SIGKILLed one); its output goes to a
log file, not a pipe (a chatty converter would block on a full pipe nobody reads). Child side (`serve`):
before an item it appends {"start": id} to the progress file, after it {"done": id, "result": {...}},
each line fsynced. A death -- a signal, an exit code, or no progress line for `timeout_s` (then the
process group is killed) -- is charged to the item the worker had started (with none started: the next
item, or the last one when it died on its way out). Then, per the job, a fresh worker resumes after it
("resume": one bad item costs one result) or every remaining item fails with the same death
("fail_rest": what one process measured in turn shares its fate). A worker that dies before starting
any item fails every remaining item: its environment is broken, not an item. `run(job, on_result)` also
hands each result to `on_result(id, result)` as soon as it is final, while the worker goes on with the
next item (a caller keeps it, e.g. in a cache, before a long job ends or is interrupted).

Imports only the standard library: the child side runs under `.venv-tflite-runtime` too.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline import fsutil, procutil, runlog

AFTER_DEATH = ("resume", "fail_rest")
POLL_S = 0.05


@dataclass(frozen=True)
class Job:
    module: str                         # the worker: `python -m MODULE JOB.json`, calling `serve`
    items: tuple[dict, ...]             # each with a unique "id" (a JSON string or number)
    params: dict = field(default_factory=dict)   # what every item shares (runtime, folders, ...)
    python: str = sys.executable        # another venv's interpreter for an old runtime
    timeout_s: float = 300.0            # no progress line for this long on one item: killed
    first_timeout_s: float = 0.0        # the same for a fresh worker's first item (imports); 0 = timeout_s
    after_death: str = "resume"         # "resume" after the charged item, or "fail_rest"
    sandbox: object = None              # a `pipeline.sandbox.Sandbox`: the worker opens a user's model

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(self.items))
        ids = [it.get("id") for it in self.items]
        if any(i is None for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(f"{self.module}: every item needs a unique 'id', got {ids}")
        if self.after_death not in AFTER_DEATH:
            raise ValueError(f"{self.module}: after_death must be one of {AFTER_DEATH}, got {self.after_death!r}")
        if self.timeout_s <= 0 or self.first_timeout_s < 0:
            raise ValueError(f"{self.module}: timeouts must be > 0, got {self.timeout_s}, {self.first_timeout_s}")


def describe_exit(rc: int) -> str:
    """A dead worker's return code in words, naming the signal (SIGSEGV, SIGABRT, SIGKILL...)."""
    if rc < 0:
        try:
            return f"worker killed by signal {signal.Signals(-rc).name} ({-rc})"
        except ValueError:
            return f"worker killed by signal {-rc}"
    return f"worker exited with code {rc}"


def run(job: Job, on_result: Callable[[object, dict], None] | None = None) -> dict:
    """id -> result for every item of `job`, in item order; never raises for the worker's death. A
    death's result: {"status": "failed", "error": ..., "death": "crash" | "hang" | "startup"}.
    `on_result(id, result)` is called once per item, as soon as its result is final."""
    if job.sandbox is not None:
        from pipeline import sandbox
        sandbox.require()   # no working bubblewrap and no opt-out: one line, exit 2, before any work
    results: dict = {}
    told: set = set()

    def tell(i, result: dict) -> None:
        if on_result is not None and i not in told:
            told.add(i)
            on_result(i, result)

    remaining = list(job.items)
    while remaining:
        last = remaining[-1]["id"]
        # the last item is told after the worker's exit: a death on its way out is charged to it
        done, started, death, kind, tail = _one_worker(job, remaining, lambda i, r: i == last or tell(i, r))
        results.update(done)
        remaining = [it for it in remaining if it["id"] not in done]
        if not death:
            if not remaining:
                break
            death, kind = "worker exited before finishing its items", "crash"
        failed = {"status": "failed", "error": death + (f"; last output: {tail[:200]}" if tail else ""),
                  "death": kind}
        if not done and started is None:      # nothing started: the worker itself cannot run
            results.update({it["id"]: {**failed, "death": "startup"} for it in remaining})
            break
        if not remaining:                     # died on its way out of the last item
            results[last] = failed
            break
        blame = started if started is not None else remaining[0]["id"]
        results[blame] = failed
        remaining = [it for it in remaining if it["id"] != blame]
        if job.after_death == "fail_rest":
            results.update({it["id"]: dict(failed) for it in remaining})
            break
        for i in (it["id"] for it in job.items if it["id"] in results):
            tell(i, results[i])
    for it in job.items:
        tell(it["id"], results[it["id"]])
    return {it["id"]: results[it["id"]] for it in job.items}


def _one_worker(job: Job, items: list[dict], tell: Callable[[object, dict], None]) -> tuple[dict, object, str, str, str]:
    """One worker process on `items` -> (done id -> result, started id or None, death, kind, last output)."""
    with tempfile.TemporaryDirectory(prefix="mb-worker-") as tmp:
        progress, log_file, job_file = (Path(tmp) / n for n in ("progress.jsonl", "worker.log", "job.json"))
        job_file.write_text(json.dumps({"params": job.params, "items": items, "progress": str(progress)}))
        env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **procutil.child_env()}
        cmd = [job.python, "-m", job.module, str(job_file)]
        if job.sandbox is not None:
            cmd, env = job.sandbox.wrap(cmd, Path(tmp), job.python), job.sandbox.env(env, Path(tmp))
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=fsutil.ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            follow = runlog.Follower(log_file, f"{job.module} {proc.pid}")
            try:
                death, kind = _wait(proc, progress, job, tell, follow)
            except BaseException:
                procutil.kill_group(proc.pid)   # an interrupted parent: the worker is in its own session
                proc.wait()
                raise
            finally:
                follow(final=True)
        done, started = read_progress(progress)
        lines = [ln for ln in log_file.read_bytes().decode(errors="replace").splitlines() if ln.strip()]
        return done, started, death, kind, lines[-1] if lines else ""


def _wait(proc: subprocess.Popen, progress: Path, job: Job, tell: Callable[[object, dict], None],
          follow=lambda: None) -> tuple[str, str]:
    """Wait for the worker, telling each finished item's result; kill its group when one item makes no
    progress for the timeout. `follow()` each poll: the worker's output into the run log as it comes."""
    last_size, last_change, finished_one, read_to = 0, time.monotonic(), False, 0
    while True:
        follow()
        try:
            rc = proc.wait(timeout=POLL_S)
            rc = job.sandbox.exit_code(rc) if job.sandbox is not None else rc
            return (describe_exit(rc), "crash") if rc else ("", "")
        except subprocess.TimeoutExpired:
            pass
        size = progress.stat().st_size if progress.exists() else 0
        if size != last_size:
            done, read_to = _read_done(progress, read_to)
            for i, result in done:
                tell(i, result)
            finished_one |= bool(done)   # the first "done" line ends the startup allowance
            last_size, last_change = size, time.monotonic()
            continue
        limit = job.timeout_s if finished_one or not job.first_timeout_s else job.first_timeout_s
        if time.monotonic() - last_change > limit:
            procutil.kill_group(proc.pid)
            proc.wait()
            return f"worker timed out after {limit:.0f}s on one item (killed)", "hang"


def _read_done(path: Path, offset: int) -> tuple[list, int]:
    """The "done" items in the whole lines after byte `offset` -> ([(id, result)], the offset read to)."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    whole = data[:data.rfind(b"\n") + 1]   # a line still being written waits for the next poll
    done = []
    for line in whole.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "done" in msg:
            done.append((msg["done"], msg["result"]))
    return done, offset + len(whole)


def read_progress(path: Path) -> tuple[dict, object]:
    """-> (done id -> result, the id started and not done, or None)."""
    done, started = {}, None
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a line cut short by the death
            if "start" in msg:
                started = msg["start"]
            elif "done" in msg:
                done[msg["done"]] = msg["result"]
                started = None
    return done, started


# ------------------------------------------------------------------------------- the child's side

def serve(handle: Callable[[dict, dict], dict], argv: list[str] | None = None) -> int:
    """The worker's main: die with the parent, read the job, and for each item write {"start": id},
    call handle(item, params) -> result dict, write {"done": id, "result": ...}. An exception from
    `handle` becomes that item's failed result (a native crash is the parent's to record)."""
    procutil.die_with_parent()
    job = json.loads(Path((argv or sys.argv)[1]).read_text())
    for item in job["items"]:
        _append(job["progress"], {"start": item["id"]})
        try:
            result = handle(item, job["params"])
        except Exception as e:  # noqa: BLE001 - one item's error must not end the batch
            result = {"status": "failed", "error": describe_error(e)}
        _append(job["progress"], {"done": item["id"], "result": result})
    return 0


def _append(path: str, msg: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(msg, default=_plain) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _plain(o):
    return o.item() if hasattr(o, "item") else str(o)   # numpy scalars in a result


def describe_error(e: BaseException) -> str:
    """'Type: first non-empty line' of an exception (runtimes put tracebacks after the first line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else '(no message)'}"[:400]
