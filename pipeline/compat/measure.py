"""Run artifacts on a ladder of released runtimes: one worker per release, in that release's own
environment, every artifact of its format on the reference samples; a crash, a hang or a file the
release rejects costs only that one measurement (`pipeline/workers.py`, "resume").

    items = [measure.Item("digits_cnn/keras__tflite_int8", path, "tflite", sha, samples_npz, refs_key)]
    results = measure.run(items, "default", compare, cache_dir)   # one Result per item x rung

`compare(item, outputs) -> metrics` is the caller's: the zoo and `package` each compare with their own
references (parity.py judges the metrics afterwards, so a changed tolerance applies without running
again). Each result is cached as soon as it is in, keyed by the artifact's bytes, the samples and
references, the release and the versions in its environment, and the code (`code_key`).
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline import fsutil, workers
from pipeline.compat import envs, lacks, ladder
from pipeline.compat.ladder import Rung
from pipeline.schema import first_line

HERE = Path(__file__).parent
BUILD_JOBS = 4             # environments built at once: a build waits on pip's index lookups, not the CPU
TIMEOUT_S = 300.0          # one artifact making no progress this long: killed, recorded as a hang
FIRST_TIMEOUT_S = 300.0    # a fresh worker's first artifact includes the runtime's import (TensorFlow: ~10 s)


@dataclass(frozen=True)
class Item:
    """One artifact to run on every rung of its format."""
    id: str                 # unique among the items (zoo: model/stem; package: export path)
    artifact: Path
    format: str
    sha256: str
    samples: Path           # .npz: in_0, in_1, ... batch first
    refs_key: str           # hash of the samples and references `compare` uses


@dataclass
class Result:
    item_id: str
    rung: str               # Rung.id
    status: str             # ok: ran (parity is judged by the caller) | failed | skipped (no environment)
    stage: str = ""         # where it stopped: env | load | run | crash | hang
    error: str = ""         # the first line
    lacks: dict = field(default_factory=dict)    # what the release lacks (lacks.parse), {} if unnamed
    metrics: dict = field(default_factory=dict)
    version: str = ""       # the version the worker reported
    seconds: float = 0.0
    cached: bool = False


def code_key(rung: Rung, compare: Callable, python: str | None = None) -> str:
    """The code a cached result depends on (`deps.key`): the worker and the release's runtime adapter, with
    the versions of the libraries they import as installed in the release's environment (`python`); this
    module and the module of the caller's `compare` (its metrics are cached: bench.stats, parity.compare),
    with every project module they import."""
    from pipeline import deps
    adapter = deps.ROOT.joinpath(*rung.adapter.split(".")).with_suffix(".py")
    caller = getattr(sys.modules.get(compare.__module__), "__file__", None)     # None: typed in a session
    return fsutil.sha256_text(deps.key([HERE / "worker.py", adapter], python=python),
                              deps.key([Path(__file__), *([Path(caller)] if caller else [])]))


def _key(item: Item, env: envs.Env, code: str) -> str:
    return fsutil.sha256_text(item.sha256, item.refs_key, env.rung.id, env.fingerprint, code)


def run(items: list[Item], which: str, compare: Callable[[Item, list], dict], cache_dir: Path,
        env_cache: Path = envs.CACHE, jobs: int = 2, rebuild: bool = False, log=print,
        sandboxed: bool = False) -> list[Result]:
    """Every item on every rung of its format in `which` (ladder.select), `jobs` releases at a time.
    `sandboxed`: the items are made from a user's model (package): each worker runs in the OS sandbox
    (pipeline/sandbox.py), reading its release's environment, the items and their samples only."""
    plan = [(r, [it for it in items if it.format == fmt]) for fmt in ladder.formats()
            for r in ladder.select(fmt, which)]
    plan = [(r, its) for r, its in plan if its]
    out: dict[tuple[str, str], Result] = {}
    builds, stop = envs.Builds(), threading.Event()
    new = [r.id for r, _ in plan if envs.missing(r, env_cache)]
    if new:
        log(f"[compat] first use of {len(new)} release{'s' if len(new) != 1 else ''}: building "
            f"{'its environment' if len(new) == 1 else 'their environments'} in {env_cache} ({BUILD_JOBS} at a "
            "time; one-time, minutes each on a slow index; docs/compat.md)")
    with ThreadPoolExecutor(max_workers=BUILD_JOBS) as pool:
        try:
            made = dict(zip([r.id for r, _ in plan],
                            pool.map(lambda p: envs.ensure(p[0], env_cache, rebuild, log, builds), plan)))
        except BaseException:       # Ctrl-C: the builds' processes are killed, the threads return at once
            builds.stop()
            raise

    def one(rung: Rung, its: list[Item]) -> None:
        if stop.is_set():
            return
        env = made[rung.id]
        if not env.python:
            for it in its:
                out[(it.id, rung.id)] = Result(it.id, rung.id, "skipped", "env", f"no environment: {env.error}")
            return
        todo, code = [], code_key(rung, compare, env.python)
        for it in its:
            hit = _read(cache_dir / f"{_key(it, env, code)}.json")
            if hit is not None:
                out[(it.id, rung.id)] = hit
            else:
                todo.append(it)
        if todo:
            _measure(rung, env, todo, compare, cache_dir, code, out, log, stop, sandboxed)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, r, its) for r, its in plan]
        try:
            for f in futures:
                f.result()
        except BaseException:       # Ctrl-C: each worker is killed at its next result (workers.run)
            stop.set()
            raise
    return [out[(it.id, r.id)] for r, its in plan for it in its]


def _read(path: Path) -> Result | None:
    try:
        return Result(**{**json.loads(path.read_text()), "cached": True})
    except (OSError, ValueError, TypeError):
        return None


def _measure(rung: Rung, env: envs.Env, its: list[Item], compare, cache_dir: Path, code: str,
             out: dict, log, stop: threading.Event, sandboxed: bool) -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mb-compat-") as tmp:
        job_items = tuple({"id": i, "artifact": str(it.artifact), "samples": str(it.samples),
                           "outputs": str(Path(tmp) / f"out-{i}.npz")} for i, it in enumerate(its))
        started = {"t": time.perf_counter()}

        def keep(i: int, raw: dict) -> None:
            if stop.is_set():
                raise KeyboardInterrupt     # workers.run kills this release's worker on its way out
            it = its[i]
            res = _result(it, rung, raw, job_items[i]["outputs"], compare)
            res.seconds = time.perf_counter() - started["t"]
            started["t"] = time.perf_counter()
            if res.stage not in ("crash", "hang"):     # a death may be the machine's: measured again next run
                fsutil.write_json_atomic(cache_dir / f"{_key(it, env, code)}.json",
                                         {k: v for k, v in asdict(res).items() if k != "cached"})
            out[(it.id, rung.id)] = res
        box = None
        if sandboxed:    # the environment is under .cache/, which the sandbox hides unless it is read
            from pipeline import sandbox
            box = sandbox.Sandbox(reads=(str(Path(env.python).parent.parent), *{str(it.artifact) for it in its},
                                         *{str(it.samples) for it in its}), writes=(tmp,))
        workers.run(workers.Job("pipeline.compat.worker", job_items, params={"adapter": rung.adapter},
                                python=env.python, timeout_s=TIMEOUT_S, first_timeout_s=FIRST_TIMEOUT_S,
                                after_death="resume", sandbox=box), on_result=keep)
    ok = sum(out[(it.id, rung.id)].status == "ok" for it in its)
    log(f"[compat] {rung.label}: {ok}/{len(its)} ran in {time.perf_counter() - t0:.1f}s")


def _result(it: Item, rung: Rung, raw: dict, outputs: str, compare) -> Result:
    if raw.get("status") != "ok":
        text = raw.get("error", "")
        stage = raw.get("stage") or raw.get("death", "crash")
        return Result(it.id, rung.id, "failed", stage, first_line(text), lacks.parse(text))
    if raw.get("version") != rung.version:
        return Result(it.id, rung.id, "failed", "env", f"the {rung.id} environment runs version "
                      f"{raw.get('version')!r}", version=raw.get("version", ""))
    with np.load(outputs) as z:
        outs = [z[f"out_{k}"] for k in range(len(z.files))]
    try:
        metrics = compare(it, outs)
    except ValueError as e:     # outputs of another shape than the reference's: it computes something else
        return Result(it.id, rung.id, "ok", metrics={"output_count_mismatch": 1.0}, error=first_line(e),
                      version=raw["version"])
    return Result(it.id, rung.id, "ok", metrics=metrics, version=raw["version"])
