"""Interrupting `export`/`bench` (SIGINT or SIGKILL, at a random moment) loses nothing and leaves no
partial file; a re-run resumes and redoes only what is missing; two runs on one tree exclude each other.

    .venv/bin/python -m pytest -q tests/faults/test_interrupt.py          # one kill of each kind
    make fuzz                                                              # + repeated random kills

Real processes (`python -m pipeline ...`) on a copy of the trained digits model, run from that copy's
folder with relative --artifacts/--results (the workers run in the project root: artifacts and records
must still land in the folder asked for); the seed of each random moment is printed so a failure can be
replayed (FAULT_SEED=...).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from answer import check_answer
from pipeline import fsutil
from pipeline.schema import Record, read_records
from pipeline.filecheck.validate import check_model_file

PATHS = "tflite_fp32,ptl_fp32,et_portable_fp32"          # 4 artifacts: seconds each, every format
N_EXPORTS = 4
N_BENCH = 6                                             # 2 tflite x 2 runtimes + ptl + pte, one profile
BENCH = ["bench", "--profiles", "big-core", "--min-runs", "5", "--min-seconds", "0", "--ci-pct", "0", "--no-device"]


def _seed() -> int:
    s = int(os.environ.get("FAULT_SEED", random.randrange(1 << 30)))
    print(f"FAULT_SEED={s}")
    return s


@pytest.fixture
def tree(tmp_path, digits_exports):
    """A fresh tree with the trained digits model (copied from the test cache) and nothing exported."""
    from conftest import TEST_ARTIFACTS
    shutil.copytree(TEST_ARTIFACTS / "digits_cnn" / "train", tmp_path / "artifacts" / "digits_cnn" / "train")
    return tmp_path


def _cmd(tree: Path, *args: str, results: str = "results") -> list[str]:
    """The CLI with --artifacts/--results relative to `tree`, where it runs (`_env`): the workers run in
    the project root, so every path must reach them resolved against the folder the command was given in."""
    return [sys.executable, "-m", "pipeline", "--artifacts", "artifacts", "--results", results, *args]


def _env() -> dict:
    from conftest import ROOT
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class Run:
    """A CLI process (in `tree`) whose output lines are collected as they come."""

    def __init__(self, cmd: list[str], tree: Path) -> None:
        self.p = subprocess.Popen(cmd, cwd=tree, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.lines: list[str] = []
        self.err = ""
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 600) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if sum(ln.startswith(prefix) for ln in self.lines) >= count:
                return True
            if self.p.poll() is not None:
                return False
            time.sleep(0.05)
        raise TimeoutError(f"no {count} x {prefix!r} in {timeout}s: {self.lines[-5:]}")

    def finish(self, timeout: float = 900) -> int:
        rc = self.p.wait(timeout)
        self._t.join(10)
        self.err = self.p.stderr.read()
        return rc


def _tmp_dirs(tree: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, _ in os.walk(tree) for n in dirs if n.startswith(fsutil.TMP_PREFIX)]


def _orphans(run: Run) -> list[str]:
    """Live workers of the stopped CLI (a killed harness must take its workers along): the processes it
    started with `procutil.child_env()`, whose environment names it as their parent."""
    out, mark = [], f"MOBILEBENCH_PARENT_PID={run.p.pid}".encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError):
                continue
            if mark in env and state not in ("Z", "X"):
                out.append(f"{pid}: {cmd[:200]}")
    return out


def _check_tree(tree: Path) -> set[tuple[str, str]]:
    """No partial artifact or record: whatever is there is complete and consistent. Returns the
    (source, path) pairs finished."""
    done = set()
    model_dir = tree / "artifacts" / "digits_cnn"
    for f in model_dir.iterdir():
        if f.name.startswith("."):
            continue
        if f.name.endswith(".record.json"):
            saved = json.loads(f.read_text())          # a torn record would not parse
            rec = Record.from_dict(saved["record"])
            if rec.status == "ok":
                art = tree / "artifacts" / "digits_cnn" / Path(rec.artifact).name
                assert art.exists() and fsutil.sha256_file(art) == rec.artifact_sha256, f
            done.add((rec.source, rec.path))
        elif f.suffix in (".tflite", ".pte", ".ptl"):
            check_model_file(f)                       # complete files only
    for f in (tree / "results" / "cache" / "bench").glob("*.json") if (tree / "results").exists() else []:
        if not f.name.startswith("."):
            Record.from_dict(json.loads(f.read_text()))
    read_records(tree / "results" / "results.jsonl")  # raises on a torn line
    return done


def _interrupt(run: Run, sig: int, rng: random.Random, prefix: str, max_count: int) -> int:
    """Signal `run` after a random number of progress lines plus a random delay."""
    run.wait_for(prefix, rng.randint(1, max_count))
    time.sleep(rng.uniform(0, 2.0))
    if run.p.poll() is None:
        run.p.send_signal(sig)
    return run.finish()


def _export_interrupted(tree: Path, sig: int, rng: random.Random, check_lock: bool = False):
    run = Run(_cmd(tree, "export", "--models", "digits_cnn", "--paths", PATHS), tree)
    if check_lock:
        run.wait_for("[train")  # the lock is held from before the first line
        # a second writer on the same trees, and a bench reading the same artifacts: both refused
        for cmd in (_cmd(tree, "export", "--models", "digits_cnn", "--paths", PATHS),
                    _cmd(tree, *BENCH, results="results2")):
            p = subprocess.run(cmd, cwd=tree, env=_env(), capture_output=True, text=True, timeout=300)
            assert p.returncode == 3, (p.returncode, p.stderr[-500:])
            assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
            assert "another run holds the lock on this tree" in p.stderr, p.stderr
    rc = _interrupt(run, sig, rng, "[export digits_cnn", N_EXPORTS)
    time.sleep(0.5)
    assert _orphans(run) == [], _orphans(run)
    if sig == signal.SIGINT and rc != 0:
        assert rc == 130 and "interrupted" in run.err and "Traceback" not in run.err, (rc, run.err[-1000:])
        assert _tmp_dirs(tree) == [], _tmp_dirs(tree)  # SIGINT: every writer cleaned up after itself
    return _check_tree(tree)


def _resume_export(tree: Path, done_before: set) -> None:
    run = Run(_cmd(tree, "export", "--models", "digits_cnn", "--paths", PATHS), tree)
    assert run.finish() == 0, run.err[-2000:]
    up_to_date = {ln.split("] ", 1)[1].split(":")[0] for ln in run.lines
                  if ln.startswith("[export digits_cnn") and "up to date" in ln}
    assert {f"{s}__{p}" for s, p in done_before} <= up_to_date, (done_before, run.lines)
    assert len(_check_tree(tree)) == N_EXPORTS
    assert _tmp_dirs(tree) == [], _tmp_dirs(tree)    # stale temp folders of a killed run are gone


def _bench_interrupted(tree: Path, sig: int, rng: random.Random) -> int:
    run = Run(_cmd(tree, *BENCH), tree)
    rc = _interrupt(run, sig, rng, "[bench ", N_BENCH - 1)
    time.sleep(0.5)
    assert _orphans(run) == [], _orphans(run)
    if sig == signal.SIGINT and rc != 0:
        assert rc == 130 and "Traceback" not in run.err, (rc, run.err[-1000:])
        assert _tmp_dirs(tree) == []
    _check_tree(tree)
    cache = tree / "results" / "cache" / "bench"
    return len([f for f in cache.glob("*.json") if not f.name.startswith(".")]) if cache.exists() else 0


def _resume_bench(tree: Path, cached_before: int) -> None:
    run = Run(_cmd(tree, *BENCH), tree)
    assert run.finish() == 0, run.err[-2000:]
    lines = [ln for ln in run.lines if ln.startswith("[bench ") and "/" in ln.split()[1]]
    assert len(lines) == N_BENCH, run.lines
    assert sum(ln.endswith("(cached)") for ln in lines) >= cached_before, lines
    assert _tmp_dirs(tree) == []
    recs = read_records(tree / "results" / "results.jsonl")
    assert sum(r.kind == "bench" for r in recs) == N_BENCH
    check_answer(run.lines, tree / "results")     # the run ends with the picks and the report's path


def test_export_and_bench_interrupted_then_resumed(tree):
    """Export: SIGKILL at a random moment (with the two-process lock check); bench: SIGINT."""
    rng = random.Random(_seed())
    done = _export_interrupted(tree, signal.SIGKILL, rng, check_lock=True)
    _resume_export(tree, done)
    cached = _bench_interrupted(tree, signal.SIGINT, rng)
    _resume_bench(tree, cached)


@pytest.mark.fuzz
def test_repeated_random_interrupts(tree):
    """Several kills of each kind in a row, each at a random moment, then resume to completion."""
    rng = random.Random(_seed())
    done: set = set()
    for sig in (signal.SIGINT, signal.SIGKILL, signal.SIGKILL, signal.SIGINT):
        done |= _export_interrupted(tree, sig, rng)
    _resume_export(tree, done)
    cached = 0
    for sig in (signal.SIGKILL, signal.SIGINT, signal.SIGKILL):
        cached = _bench_interrupted(tree, sig, rng)
    _resume_bench(tree, cached)
