"""The one worker protocol (pipeline/workers.py) with real child processes: native crashes, hangs,
a broken interpreter, and parents that are killed or interrupted."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from pipeline import runlog, workers

CHILD = "tests.pipeline.crashy_worker"


def _items(n: int, **marks) -> tuple[dict, ...]:
    """Items 1..n; marks: {"crash": 3} marks item 3 with crash=True."""
    return tuple({"id": i, **{k: True for k, v in marks.items() if v == i}} for i in range(1, n + 1))


def test_crash_on_one_item_resumes_after_it():
    out = workers.run(workers.Job(CHILD, _items(5, crash=3), params={"p": "x"}, timeout_s=60))
    assert list(out) == [1, 2, 3, 4, 5]
    assert [out[i] for i in (1, 2, 4, 5)] == [{"status": "ok", "value": 2 * i, "p": "x"} for i in (1, 2, 4, 5)]
    assert out[3]["status"] == "failed" and "SIGABRT" in out[3]["error"] and out[3]["death"] == "crash", out[3]


def test_crash_fails_the_rest_when_the_job_says_so():
    out = workers.run(workers.Job(CHILD, _items(5, crash=3), timeout_s=60, after_death="fail_rest"))
    assert out[1]["status"] == out[2]["status"] == "ok"
    assert out[3]["status"] == out[4]["status"] == out[5]["status"] == "failed"
    assert out[3] == out[4] == out[5] and "SIGABRT" in out[5]["error"], out


def test_hang_is_killed_after_the_timeout_and_the_rest_resume():
    t0 = time.monotonic()
    out = workers.run(workers.Job(CHILD, _items(3, hang=2), timeout_s=2, first_timeout_s=60))
    took = time.monotonic() - t0
    assert out[1]["status"] == out[3]["status"] == "ok", out
    assert out[2]["status"] == "failed" and out[2]["death"] == "hang", out[2]
    assert "timed out after 2s" in out[2]["error"], out[2]
    assert took < 30, took   # killed after ~2 s without progress, not the 600 s sleep


def test_each_result_is_told_once_as_soon_as_it_is_final():
    """A caller keeps each result (the bench: a cache file) while the worker goes on: item 1 is told
    while item 2 still hangs, not when the job ends."""
    t0, told = time.monotonic(), []
    out = workers.run(workers.Job(CHILD, _items(4, hang=2, crash=3), timeout_s=3, first_timeout_s=60),
                      on_result=lambda i, r: told.append((i, r, time.monotonic() - t0)))
    assert [i for i, _, _ in told] == [1, 2, 3, 4]
    assert {i: r for i, r, _ in told} == out
    assert out[2]["death"] == "hang" and out[3]["death"] == "crash" and out[4]["status"] == "ok", out
    assert told[0][2] < told[1][2] - 2.5, told   # item 1 before the 3 s without progress on item 2 ran out


def test_an_exception_is_the_items_one_line_error():
    out = workers.run(workers.Job(CHILD, ({"id": "a", "raise": True}, {"id": "b"}), timeout_s=60))
    assert out["a"] == {"status": "failed", "error": "ValueError: bad item"}
    assert out["b"]["status"] == "ok"


def test_a_worker_that_cannot_start_fails_every_item(tmp_path):
    py = tmp_path / "broken-python"
    py.write_text("#!/bin/sh\necho 'no such runtime' >&2\nexit 3\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    out = workers.run(workers.Job(CHILD, _items(3), python=str(py), timeout_s=60))
    assert [r["death"] for r in out.values()] == ["startup"] * 3
    assert "exited with code 3" in out[1]["error"] and "no such runtime" in out[1]["error"], out[1]


def test_the_workers_output_goes_to_the_parents_stderr_tagged(tmp_path, capfd):
    """In a CLI session (pipeline/runlog.py) what a worker writes is copied to the log, or with -v the terminal."""
    py = tmp_path / "chatty-python"
    py.write_text("#!/bin/sh\necho 'converter says hello'\necho 'and warns' >&2\nexit 3\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    with runlog.session(tmp_path, "bench", verbose=True):     # -v: the terminal's stderr
        workers.run(workers.Job(CHILD, _items(1), python=str(py), timeout_s=60))
    err = capfd.readouterr().err.splitlines()
    assert any(ln.startswith(CHILD) and ln.endswith("| converter says hello") for ln in err), err
    assert any(ln.endswith("| and warns") for ln in err), err


def test_job_is_validated_at_construction():
    with pytest.raises(ValueError, match="unique 'id'"):
        workers.Job(CHILD, ({"id": 1}, {"id": 1}))
    with pytest.raises(ValueError, match="unique 'id'"):
        workers.Job(CHILD, ({"x": 1},))
    with pytest.raises(ValueError, match="after_death"):
        workers.Job(CHILD, _items(1), after_death="retry")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")   # a zombie is dead
    except FileNotFoundError:
        return False


PARENT = """
import sys
from pipeline import runlog, workers
item = {{"id": 1, "hang": True, "pid_file": sys.argv[1]}}
job = workers.Job({child!r}, (item,) if sys.argv[2] == "run" else (), timeout_s=600, stop_grace_s=float(sys.argv[3]))
if sys.argv[2] == "run":
    workers.run(job)
else:
    items = [item]
    workers.run_queue(job, lambda: items.pop() if items else workers.WAIT)
"""


@pytest.mark.parametrize("sig,mode,grace", [(signal.SIGKILL, "run", 0), (signal.SIGINT, "run", 0),
                                            (signal.SIGINT, "run_queue", 10)])
def test_workers_die_with_a_killed_or_interrupted_parent(tmp_path, sig, mode, grace):
    """SIGINT with a grace: the worker is interrupted first, so it can remove its temp files."""
    pid_file = tmp_path / "worker.pid"
    # SIGINT back to its default in the parent: a suite launched in the background by a non-interactive shell
    # (`... &`) inherits SIGINT ignored, and a Python started so never turns it into KeyboardInterrupt
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=CHILD), str(pid_file), mode, str(grace)],
                              cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        assert parent.poll() is None and time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    parent.send_signal(sig)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"worker {child} outlived its parent ({sig.name})"
    assert (tmp_path / "worker.pid.interrupted").exists() == bool(grace)

def test_a_sigtermed_worker_cleans_up_like_an_interrupted_one(tmp_path):
    """SIGTERM to the worker itself (not its parent): its cleanup runs (the crashy worker marks it, as a
    writer removes its temp folder), the item fails with the exit, the parent goes on."""
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=CHILD), str(pid_file), "run", "0"],
                              cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        assert parent.poll() is None and time.monotonic() < deadline, "the worker never started"
        time.sleep(0.05)
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert parent.wait(timeout=60) == 0
    assert (tmp_path / "worker.pid.interrupted").exists()


class _Queue:
    """Items 1..n in turn, item k+n queued once item k is done (as the export stage queues a model's
    paths once its training is done); WAIT while nothing is ready but something runs."""

    def __init__(self, n: int, follow: int = 0, **marks):
        self.ready = [{"id": i, "pid": True, **{k: True for k, v in marks.items() if v == i}} for i in range(1, n + 1)]
        self.follow, self.running, self.taken = follow, 0, []

    def take(self):
        if self.ready:
            self.running += 1
            self.taken.append(self.ready[0]["id"])
            return self.ready.pop(0)
        return workers.WAIT if self.running else None

    def done(self, i, result):
        self.running -= 1
        if i <= self.follow:
            self.ready.append({"id": i + 100, "pid": True})


def test_queue_keeps_one_worker_per_slot_and_takes_items_as_they_appear():
    q, lines = _Queue(3, follow=3), []
    q.ready[0]["say"] = "[item 1] hello"
    out = workers.run_queue(workers.Job(CHILD, timeout_s=60), q.take, slots=2, on_result=q.done,
                            on_line=lines.append)
    assert sorted(out) == [1, 2, 3, 101, 102, 103] and all(r["status"] == "ok" for r in out.values()), out
    assert lines == ["[item 1] hello"]
    assert len({r["pid"] for r in out.values()}) == 2, out      # two long-lived workers served all six


def test_queue_crash_fails_its_item_and_a_fresh_worker_takes_the_next():
    q = _Queue(4, crash=2)
    out = workers.run_queue(workers.Job(CHILD, timeout_s=60), q.take, slots=1, on_result=q.done)
    assert out[2]["status"] == "failed" and out[2]["death"] == "crash" and "SIGABRT" in out[2]["error"], out[2]
    assert [out[i]["status"] for i in (1, 3, 4)] == ["ok"] * 3
    assert out[1]["pid"] != out[3]["pid"] == out[4]["pid"]


def test_queue_fail_rest_and_a_worker_that_cannot_start(tmp_path):
    q = _Queue(4, crash=2)
    out = workers.run_queue(workers.Job(CHILD, timeout_s=60, after_death="fail_rest"), q.take, on_result=q.done)
    assert out[1]["status"] == "ok" and out[2] == out[3] == out[4] and out[4]["death"] == "crash", out
    py = tmp_path / "broken-python"
    py.write_text("#!/bin/sh\nexit 3\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    q = _Queue(3)
    out = workers.run_queue(workers.Job(CHILD, python=str(py), timeout_s=60), q.take, slots=2, on_result=q.done)
    assert [r["death"] for r in out.values()] == ["startup"] * 3, out
    assert q.taken == [1, 2, 3]


def test_a_queue_that_waits_with_nothing_running_is_a_bug_not_a_hang():
    with pytest.raises(RuntimeError, match="says wait"):
        workers.run_queue(workers.Job(CHILD), lambda: workers.WAIT)


def test_session_keeps_one_worker_and_survives_a_crash():
    """`workers.Session`: one item at a time in one long-lived worker; a crash is that item's result and the
    next call gets a fresh worker; close() ends it."""
    with workers.Session(workers.Job(CHILD, params={"p": "s"}, timeout_s=60)) as s:
        a, b = s.call({"id": 1, "pid": True}), s.call({"id": 2, "pid": True})
        assert a["status"] == b["status"] == "ok" and a["pid"] == b["pid"] and b["value"] == 4, (a, b)
        dead = s.call({"id": 3, "crash": True})
        assert dead["status"] == "failed" and "SIGABRT" in dead["error"] and dead["death"] == "crash", dead
        c = s.call({"id": 4, "pid": True})
        assert c["status"] == "ok" and c["pid"] != a["pid"], c
        proc = s._w.proc
    assert proc.poll() is not None       # closed with the block
    with pytest.raises(ValueError):
        workers.Session(workers.Job(CHILD, items=({"id": 1},)))
