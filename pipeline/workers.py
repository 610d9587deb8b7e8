"""The one crash-isolating worker protocol: items through a child process that may crash natively,
hang or be killed, and still one result per item.

    job = workers.Job("probes.run_worker", items=({"id": "conv2d/tflite_fp32/litert", ...}, ...),
                      params={"runtime": "litert"}, timeout_s=120, after_death="resume")
    results = workers.run(job)      # id -> result dict, whatever the worker did

    # items that appear as others finish, in long-lived workers (the export stage: a model's paths once
    # its training is done); take() -> an item, WAIT, or None when nothing is left
    results = workers.run_queue(job, take, slots=2, on_result=..., on_line=print)

    # one long-lived worker, one item at a time, the caller waiting for each (the LiteRT peer tool)
    with workers.Session(job) as s: result = s.call({"id": 1, ...})

    # the child, `python -m probes.run_worker JOB.json`:
    sys.exit(workers.serve(lambda item, params: {"status": "ok", ...}))
    sys.exit(workers.serve(lambda item, params, say: ..., say=True))   # say(line): a line for on_line

Parent side: the child runs in a session of its own (a crash or a kill reaches only its process group)
with `procutil.child_env()` (it dies with the parent, even a SIGKILLed one) and `Job.env`; its output
goes to a log file, not a pipe (a chatty converter would block on a full pipe nobody reads), copied into
the run log as it comes. Items reach it through an inbox file (all at once for `run`, one at a time for
`run_queue`, whose worker stays alive between items: its imports are paid once per slot). Child side
(`serve`): before an item it appends {"start": id} to the progress file, after it {"done": id, "result":
{...}}, and {"say": line} for each of its progress lines, each fsynced. A death -- a signal, an exit code,
or no progress line for `timeout_s` (then the process group is killed) -- is charged to the item the
worker had started (with none started: the next item, or the last one when it died on its way out).
Then, per the job, a fresh worker resumes after it ("resume": one bad item costs one result) or every
remaining item fails with the same death ("fail_rest": what one process measured in turn shares its
fate). A worker that dies before starting any item fails every remaining item: its environment is
broken, not an item. `on_result(id, result)` gets each result as soon as it is final, while the worker
goes on with the next item (a caller keeps it, e.g. in a cache, before a long job ends or is
interrupted). An interrupted parent stops its workers (SIGINT first when `Job.stop_grace_s`, so they
remove their temp files, then SIGKILL) and raises.

Imports only the standard library: the child side runs under `.venv-tflite-runtime` too.
"""
from __future__ import annotations

import contextlib
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
WAIT = "wait"        # a queue's take(): no item ready now, one still running may queue one
_END = {"end": True}  # the inbox's last line: no more items, exit


@dataclass(frozen=True)
class Job:
    module: str                         # the worker: `python -m MODULE JOB.json`, calling `serve`
    items: tuple[dict, ...] = ()        # each with a unique "id" (a JSON string or number); run_queue takes its own
    params: dict = field(default_factory=dict)   # what every item shares (runtime, folders, ...)
    python: str = sys.executable        # another venv's interpreter for an old runtime
    env: dict = field(default_factory=dict)      # added to the worker's environment (thread counts)
    timeout_s: float = 300.0            # no progress line for this long on one item: killed
    first_timeout_s: float = 0.0        # the same for a fresh worker's first item (imports); 0 = timeout_s
    after_death: str = "resume"         # "resume" after the charged item, or "fail_rest"
    stop_grace_s: float = 0.0           # an interrupted parent: SIGINT, then this long to clean up; 0 = SIGKILL
    sandbox: object = None              # a `pipeline.sandbox.Sandbox`: the worker opens a user's model

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(self.items))
        ids = [it.get("id") for it in self.items]
        if any(i is None for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(f"{self.module}: every item needs a unique 'id', got {ids}")
        if self.after_death not in AFTER_DEATH:
            raise ValueError(f"{self.module}: after_death must be one of {AFTER_DEATH}, got {self.after_death!r}")
        if self.timeout_s <= 0 or self.first_timeout_s < 0 or self.stop_grace_s < 0:
            raise ValueError(f"{self.module}: timeouts must be > 0, got {self.timeout_s}, {self.first_timeout_s}, "
                             f"{self.stop_grace_s}")

    def require(self) -> None:
        """A sandboxed job that cannot run here (no working bubblewrap, no opt-out): one line, exit 2, before
        any work (`pipeline/sandbox.py`)."""
        if self.sandbox is not None:
            from pipeline import sandbox
            sandbox.require()

    def launch(self, scratch: Path) -> tuple[list[str], dict]:
        """The worker's command line and environment for its scratch folder (job.json, inbox, progress),
        inside the job's sandbox when it has one."""
        cmd = [self.python, "-m", self.module, str(scratch / "job.json")]
        env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **self.env,
               **procutil.child_env()}
        if self.sandbox is not None:
            return self.sandbox.wrap(cmd, scratch, self.python), self.sandbox.env(env, scratch)
        return cmd, env

    def exit_code(self, rc: int) -> int:
        """A worker's exit code as Popen gives it for the worker itself (bwrap's 128 + N is -N)."""
        return self.sandbox.exit_code(rc) if self.sandbox is not None else rc


def describe_exit(rc: int) -> str:
    """A dead worker's return code in words, naming the signal (SIGSEGV, SIGABRT, SIGKILL...)."""
    if rc < 0:
        try:
            return f"worker killed by signal {signal.Signals(-rc).name} ({-rc})"
        except ValueError:
            return f"worker killed by signal {-rc}"
    return f"worker exited with code {rc}"


def death_result(why: str, kind: str, output: str = "") -> dict:
    """An item's result when its worker died: `why` in words (an exit, a signal, a timeout), the kind
    ("crash", "hang", "startup"), the worker's last output line."""
    return {"status": "failed", "error": why + (f"; last output: {output[:200]}" if output else ""),
            "death": kind, "why": why}


Tell = Callable[[object, dict], None]
Say = Callable[[str], None]


def run(job: Job, on_result: Tell | None = None, on_line: Say | None = None) -> dict:
    """id -> result for every item of `job`, in item order; never raises for the worker's death. A
    death's result: `death_result(...)`. `on_result(id, result)` is called once per item, as soon as its
    result is final; `on_line(line)` for each line the worker says."""
    job.require()
    results: dict = {}
    told: set = set()

    def tell(i, result: dict) -> None:
        if on_result is not None and i not in told:
            told.add(i)
            on_result(i, result)

    remaining = list(job.items)
    while remaining:
        last = remaining[-1]["id"]
        w = _Worker(job, on_line).open()
        try:
            w.hand(remaining, end=True)
            # the last item is told after the worker's exit: a death on its way out is charged to it
            death, kind = w.wait(lambda i, r: i == last or tell(i, r))
        except BaseException:
            _stop_all([w], job.stop_grace_s)
            raise
        w.close()
        done, started = w.done, w.started
        results.update(done)
        remaining = [it for it in remaining if it["id"] not in done]
        if not death:
            if not remaining:
                break
            death, kind = "worker exited before finishing its items", "crash"
        failed = death_result(death, kind, w.tail)
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


def run_queue(job: Job, take: Callable[[], dict | str | None], slots: int = 1, on_result: Tell | None = None,
              on_line: Say | None = None) -> dict:
    """Items from `take()` -- an item, `WAIT` (none ready yet: one running may queue more, e.g. from
    `on_result`) or None (nothing left) -- each handed to the first free of `slots` long-lived workers,
    which keep their imports from item to item. -> id -> result of every item taken, in the order
    finished; `on_result` gets each at once (a worker that dies after its last item costs nothing). A
    death fails the item in flight and a fresh worker takes the next ("resume"), or every later item
    fails the same ("fail_rest", or a worker that died before starting any item)."""
    if job.items:
        raise ValueError(f"{job.module}: a queue job takes its items from take(), not Job.items")
    job.require()
    results: dict = {}
    slot: list[_Worker | None] = [None] * slots
    busy: list = [None] * slots             # the id of the item each slot's worker is on
    ending: list[_Worker] = []              # told there is nothing more: reaped as they exit
    dead: dict | None = None                # every later item's result, once the job is beyond saving
    left = True

    def finish(i, result: dict) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)

    try:
        while True:
            for s in range(slots):
                while left and busy[s] is None:
                    item = take()
                    if item is None:
                        left = False
                    elif item == WAIT:
                        if all(b is None for b in busy):
                            raise RuntimeError(f"{job.module}: the queue says wait, yet no item is running")
                        break
                    elif item["id"] in results or item["id"] in busy:
                        raise ValueError(f"{job.module}: item id {item['id']!r} taken twice")
                    elif dead is not None:
                        finish(item["id"], dict(dead))
                    else:
                        if slot[s] is not None and slot[s].proc.poll() is not None:
                            slot[s].close()     # it died idle: no item's death; a fresh one takes over
                            slot[s] = None
                        slot[s] = slot[s] or _Worker(job, on_line).open()
                        slot[s].hand([item])
                        busy[s] = item["id"]
                if not left and busy[s] is None and slot[s] is not None:
                    slot[s].hand([], end=True)
                    ending.append(slot[s])
                    slot[s] = None
            for w in list(ending):
                if w.poll(_ignore) is not None:
                    w.close()
                    ending.remove(w)
            if not left and not ending and all(b is None for b in busy):
                return results
            time.sleep(POLL_S)
            for s in range(slots):
                w = slot[s]
                if busy[s] is None:
                    continue
                state = w.poll(_ignore)
                if busy[s] in w.done:
                    finish(busy[s], w.done[busy[s]])
                    busy[s] = None
                elif state is not None:
                    fresh = not w.done and w.started is None
                    death, kind = state if state[0] else ("worker exited before finishing its item", "crash")
                    w.close()
                    failed = death_result(death, "startup" if fresh else kind, w.tail)
                    if fresh or job.after_death == "fail_rest":
                        dead = failed
                    slot[s] = None
                    i, busy[s] = busy[s], None
                    finish(i, failed)
    except BaseException:
        _stop_all([w for w in slot + ending if w is not None], job.stop_grace_s)
        raise


def _ignore(i, result) -> None:
    pass


class Session:
    """One long-lived worker for a caller that hands it one item at a time and waits for its result (the
    bench worker's LiteRT peer tool, run between its own timings): `call(item) -> result`, never raising for
    the worker's death (`death_result`; the next call starts a fresh worker). `close()` ends it.

        with workers.Session(workers.Job("pipeline.bench.peer", params={...}, timeout_s=120)) as s:
            res = s.call({"id": 1, ...})
    """

    def __init__(self, job: Job) -> None:
        if job.items:
            raise ValueError(f"{job.module}: a session takes its items from call(), not Job.items")
        job.require()
        self.job, self._w = job, None

    def call(self, item: dict) -> dict:
        w = self._w
        if w is not None and w.proc.poll() is not None:
            w.close()           # it died idle: no item's death
            w = None
        if w is None:
            w = self._w = _Worker(self.job, None).open()
        try:
            w.hand([item])
            while item["id"] not in w.done:
                state = w.poll(_ignore)
                if state is not None and item["id"] not in w.done:
                    death, kind = state if state[0] else ("worker exited before finishing its item", "crash")
                    w.close()
                    self._w = None
                    return death_result(death, "startup" if w.started is None and not w.done else kind, w.tail)
                time.sleep(POLL_S)
        except BaseException:
            self.close()
            raise
        return w.done[item["id"]]

    def close(self) -> None:
        if self._w is not None:
            _stop_all([self._w], self.job.stop_grace_s)
            self._w = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Worker:
    """One worker process and its files in a temp folder of its own: job.json, the inbox of items, the
    progress file, the output log. `done`/`started`: what its progress file said so far."""

    def __init__(self, job: Job, on_line: Say | None):
        self.job, self.on_line = job, on_line
        self.done: dict = {}
        self.started = None
        self.tail = ""                       # its output's last line, once closed
        self._handed, self._ended, self._read_to = 0, False, 0
        self._last_change = time.monotonic()

    def open(self) -> _Worker:
        self._tmp = tempfile.TemporaryDirectory(prefix="mb-worker-")
        d = Path(self._tmp.name)
        self.inbox, self.progress, self.log_file = d / "inbox.jsonl", d / "progress.jsonl", d / "worker.log"
        self.inbox.touch()
        job_file = d / "job.json"
        job_file.write_text(json.dumps({"params": self.job.params, "inbox": str(self.inbox),
                                        "progress": str(self.progress)}))
        cmd, env = self.job.launch(d)
        try:
            with open(self.log_file, "wb") as log:
                self.proc = subprocess.Popen(cmd, cwd=fsutil.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self._tmp.cleanup()
            raise
        self._follow = runlog.Follower(self.log_file, f"{self.job.module} {self.proc.pid}")
        return self

    def hand(self, items: list[dict], end: bool = False) -> None:
        """Append items (and with `end`, the end marker) to its inbox; the clock of the timeout restarts."""
        with open(self.inbox, "a") as f:
            f.write("".join(json.dumps(m) + "\n" for m in [*items, *([_END] if end else [])]))
        self._handed += len(items)
        self._ended |= end
        self._last_change = time.monotonic()

    def poll(self, tell: Tell) -> tuple[str, str] | None:
        """One look: what it wrote since the last (results to `tell`, lines to `on_line`, output to the run
        log) -> None while it lives; ("", "") once it exited with 0; (death, kind) on another exit, or when
        an item (or its way out) made no progress for the timeout: its process group is then killed."""
        rc = self.proc.poll()
        if self._read(tell):
            self._last_change = time.monotonic()
        self._follow()
        if rc is not None:
            rc = self.job.exit_code(rc)
            return (describe_exit(rc), "crash") if rc else ("", "")
        if len(self.done) < self._handed or self._ended:
            limit = self.job.timeout_s if self.done or not self.job.first_timeout_s else self.job.first_timeout_s
            if time.monotonic() - self._last_change > limit:
                procutil.kill_group(self.proc.pid)
                self.proc.wait()
                return f"worker timed out after {limit:.0f}s on one item (killed)", "hang"
        return None

    def wait(self, tell: Tell) -> tuple[str, str]:
        """Poll until it exits -> ("", "") or (death, kind)."""
        while True:
            state = self.poll(tell)
            if state is not None:
                return state
            try:
                self.proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """After its exit: the rest of its output to the run log, its last line kept, its files removed."""
        self._follow(final=True)
        lines = [ln for ln in self.log_file.read_bytes().decode(errors="replace").splitlines() if ln.strip()]
        self.tail = lines[-1] if lines else ""
        self._tmp.cleanup()

    def _read(self, tell: Tell) -> bool:
        """The whole lines added to the progress file since the last read (a line still being written, or
        cut short by a death, is not one) -> whether there were any."""
        try:
            with open(self.progress, "rb") as f:
                f.seek(self._read_to)
                data = f.read()
        except FileNotFoundError:
            return False
        whole = data[:data.rfind(b"\n") + 1]
        self._read_to += len(whole)
        for line in whole.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "start" in msg:
                self.started = msg["start"]
                self._follow.tag = f"{self.job.module} {self.started}"   # its output, tagged with the item
            elif "done" in msg:
                self.done[msg["done"]], self.started = msg["result"], None
                tell(msg["done"], msg["result"])
            elif "say" in msg:
                if self.on_line is not None:
                    self.on_line(msg["say"])
                else:
                    runlog.to_stderr([msg["say"]], self._follow.tag)
        return bool(whole)


def _stop_all(live: list[_Worker], grace_s: float) -> None:
    """An interrupted parent: its workers out now -- SIGINT first with a grace, so each removes its temp
    files on the way out; SIGKILL whoever is still there (stuck in native code: the next run cleans up)."""
    running = [w for w in live if w.proc.poll() is None]
    if grace_s and running:
        for w in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for w in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(max(0.0, deadline - time.monotonic()))
    for w in live:
        if w.proc.poll() is None:
            procutil.kill_group(w.proc.pid)
            w.proc.wait()
        w.close()


# ------------------------------------------------------------------------------- the child's side

def serve(handle: Callable[..., dict], argv: list[str] | None = None, say: bool = False) -> int:
    """The worker's main: die with the parent, read the job, and for each item of the inbox write
    {"start": id}, call handle(item, params) -> result dict (with `say`: handle(item, params, say), where
    say(line) is a progress line for the parent's `on_line`), write {"done": id, "result": ...}. An
    exception from `handle` becomes that item's failed result (a native crash is the parent's to record)."""
    procutil.die_with_parent()
    # a SIGTERM (a user's `kill`, a supervisor) ends the worker as Ctrl-C does: the writers' cleanup runs, so
    # no `.tmp-*` folder of a half-written artifact stays behind (Python's default would end it on the spot)
    signal.signal(signal.SIGTERM, _interrupt)
    job = json.loads(Path((argv or sys.argv)[1]).read_text())
    progress = job["progress"]
    extra = (lambda line: _append(progress, {"say": str(line)}),) if say else ()
    for item in _inbox(job["inbox"]):
        _append(progress, {"start": item["id"]})
        try:
            result = handle(item, job["params"], *extra)
        except Exception as e:  # noqa: BLE001 - one item's error must not end the batch
            result = {"status": "failed", "error": describe_error(e)}
        _append(progress, {"done": item["id"], "result": result})
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _inbox(path: str):
    """The items the parent appends to the inbox, as they come, until its end marker (or the parent is
    gone: a worker never outlives it, even where `die_with_parent` cannot ask the kernel)."""
    parent, buf = os.getppid(), b""
    with open(path, "rb") as f:
        while True:
            buf += f.readline()
            if not buf.endswith(b"\n"):       # nothing new yet, or half a line
                if os.getppid() != parent:
                    return
                time.sleep(0.01)
                continue
            msg, buf = json.loads(buf), b""
            if msg == _END:
                return
            yield msg


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
