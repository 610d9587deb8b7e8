"""Fuzz the model-file loaders: mutate real artifacts, feed them along the path a user's file takes.

    python -m pipeline.tools.fuzz --artifacts .cache/test-artifacts --per-format 1000      # `make fuzz`

Mutants (bit flips, byte/int overwrites with edge values, truncation, chunk deletion/duplication,
splices of two real files of the same format) of every real artifact of a format go through
`pipeline.filecheck.validate.check_model_file` in this process (as `bench` does for a user's file), then to a
batch worker (`pipeline/tools/fuzz_worker.py`, `pipeline/workers.py`) that runs the real `pipeline.bench.worker.measure_artifact` with every
runtime that reads the format. A worker crash (signal) or hang is caught here, counted against the
mutant that caused it, and the worker restarts from the next mutant. Each mutant ends up as exactly
one of: rejected by the validator, rejected by the runtime (a clean one-line error), loaded and ran,
crashed the worker (caught), hung the worker (killed), or crashed the harness (must never happen).
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import fsutil, runtimes, sandbox, workers
from pipeline.tools import fuzz_tflite
from pipeline.filecheck.validate import EXTENSIONS, BadModelFile, check_model_file

EDGE_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(data: bytes, other: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of `data` (`other`: a second real file of the same format, for splices)."""
    b = bytearray(data)
    n = len(b)
    op = rng.choice(("flip", "flip", "byte", "int", "truncate", "delete", "duplicate", "splice"))
    if op == "flip":
        k = rng.choice((1, 1, 2, 4, 16))
        for _ in range(k):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b), f"flip {k} bit(s)"
    if op == "byte":
        i = rng.randrange(n)
        b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, 1))
        return bytes(b), f"byte @{i}"
    if op == "int":
        # headers and flatbuffer offsets/lengths are 4-byte aligned little-endian ints
        i = rng.randrange(0, max(n - 4, 1)) & ~3
        b[i:i + 4] = rng.choice(EDGE_INTS).to_bytes(4, "little")
        return bytes(b), f"int @{i}"
    if op == "truncate":
        cut = rng.randrange(n)
        return bytes(b[:cut]), f"truncate @{cut}"
    i = rng.randrange(n)
    j = min(n, i + rng.choice((1, 4, 16, 256, 4096)))
    if op == "delete":
        return bytes(b[:i] + b[j:]), f"delete {i}:{j}"
    if op == "duplicate":
        return bytes(b[:j] + b[i:j] + b[j:]), f"duplicate {i}:{j}"
    cut_a, cut_b = rng.randrange(n), rng.randrange(len(other))
    return bytes(b[:cut_a]) + other[cut_b:], f"splice @{cut_a}/{cut_b}"


def mutate_zip_member(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One member of a zip (a .ptl) mutated, the archive rewritten well-formed (CRCs right): a mutant that
    passes the zip checks and reaches the runtime's own parser. Byte mutations of the whole archive
    almost never do (a CRC or the central directory breaks), so without these the TorchScript loader
    would see too few mutants to be fuzzed at all."""
    src = zipfile.ZipFile(io.BytesIO(data))
    infos = src.infolist()
    pick = rng.randrange(len(infos))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for j, info in enumerate(infos):
            member = src.read(info)
            if j == pick:
                member, how = mutate(member, member, rng) if member else (b"\0", "filled")
            dst.writestr(info, member)
    return out.getvalue(), f"member {infos[pick].filename}: {how}"


@dataclass
class Tally:
    fmt: str
    tried: int = 0
    outcomes: Counter = field(default_factory=Counter)       # per mutant: its worst outcome
    per_runtime: dict = field(default_factory=dict)          # runtime -> Counter
    examples: dict = field(default_factory=dict)             # outcome -> an example error line
    seconds: float = 0.0
    precheck_s_per_mb: float = 0.0                           # slowest harness pre-check, per MB of file

    def summary(self) -> dict:
        return {"format": self.fmt, "tried": self.tried, **{k: self.outcomes.get(k, 0) for k in OUTCOMES},
                "per_runtime": {r: dict(c) for r, c in self.per_runtime.items()},
                "examples": self.examples, "seconds": round(self.seconds, 1),
                "precheck_s_per_mb_max": round(self.precheck_s_per_mb, 4)}


# ordered from best to worst; a mutant counts as its worst outcome over the runtimes
OUTCOMES = ("rejected_by_validator", "loaded", "rejected_by_runtime", "worker_hung_killed",
            "worker_crashed_caught", "unclear_error", "harness_crashed")


def is_clear(error: str, path: Path) -> bool:
    """One line, a real message after the exception type, and (for our own checks) the file name."""
    if not error or "\n" in error or len(error) > 500:
        return False
    msg = error.split(": ", 1)[1] if ": " in error else ""
    return len(msg.strip()) >= 8 and msg.strip() != "(no message)"


def _job(path: Path, runtime: str, shapes: list, mem_limit_mb: int) -> dict:
    return {"root": str(fsutil.ROOT), "artifact": str(path), "runtime": runtime, "threads": 1,
            "cpus": [], "mem_limit_mb": mem_limit_mb, "warmup": 0, "min_runs": 1, "min_seconds": 0.0,
            "max_runs": 1, "max_seconds": 5.0, "eval": "", "layout": "same", "eval_limit": 0,
            "outputs": "", "shapes": shapes}


def measure_mutants(jobs: list[dict], python: str, per_job_timeout: float = 20.0,
                    startup_timeout: float = 90.0) -> list[dict]:
    """Run jobs in batch workers (`pipeline/workers.py`); every job gets a result dict, whatever the worker
    does: a crash or hang is charged to the job it happened on (status worker_crashed / worker_hung) and
    a fresh worker resumes after it. A worker that cannot start at all is the harness's failure: raises."""
    box = sandbox.Sandbox(reads=tuple({str(Path(j["artifact"]).parent) for j in jobs}))   # mutants: hostile files
    res = workers.run(workers.Job("pipeline.tools.fuzz_worker", tuple({**j, "id": i} for i, j in enumerate(jobs)),
                                  python=python, timeout_s=per_job_timeout, first_timeout_s=startup_timeout,
                                  sandbox=box))
    out = []
    for r in res.values():
        death = r.get("death")
        if death == "startup":
            raise RuntimeError(f"batch worker {python} died before its first job: {r['error']}")
        out.append({"status": "worker_hung" if death == "hang" else "worker_crashed", "error": r["error"]}
                   if death else r)
    return out


def fuzz_format(fmt: str, seeds: list[Path], n: int, work: Path, seed: int = 0, shapes: list | None = None,
                mem_limit_mb: int = 3072, keep: Path | None = None, log=print) -> Tally:
    """Make `n` mutants of the seed files, check each, run the survivors with every runtime of `fmt`."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    blobs = [p.read_bytes() for p in seeds]
    ext = next(e for e, f in EXTENSIONS.items() if f == fmt)
    tally = Tally(fmt)
    mdir = work / f"mutants-{fmt}"
    mdir.mkdir(parents=True, exist_ok=True)
    worst: dict[int, str] = {}
    errors: dict[int, str] = {}
    survivors: list[tuple[int, Path]] = []
    hows: dict[int, str] = {}

    def note(i: int, outcome: str, err: str = "") -> None:
        if i not in worst or OUTCOMES.index(outcome) > OUTCOMES.index(worst[i]):
            worst[i] = outcome
            errors[i] = err

    for i in range(n):
        k = rng.randrange(len(blobs))
        if fmt == "tflite" and rng.random() < 0.5:   # half of them lie about the structure
            data, how = fuzz_tflite.mutate(blobs[k], rng)
        elif fmt == "ptl" and rng.random() < 0.5:    # half of them are well-formed zips with a damaged member
            data, how = mutate_zip_member(blobs[k], rng)
        else:
            data, how = mutate(blobs[k], blobs[rng.randrange(len(blobs))], rng)
        path = mdir / f"m{i:05d}{ext}"
        path.write_bytes(data)
        hows[i] = f"{seeds[k].name} {how}"
        tally.tried += 1
        t_check = time.perf_counter()
        try:
            check_model_file(path)
            survivors.append((i, path))
        except BadModelFile as e:
            note(i, "rejected_by_validator" if is_clear(f"BadModelFile: {e}", path) and str(path) in str(e)
                 else "unclear_error", f"{how}: {e}")
        except BaseException as e:  # noqa: BLE001 - the harness must survive anything a file does
            if isinstance(e, KeyboardInterrupt):
                raise
            note(i, "harness_crashed", f"{how}: {type(e).__name__}: {e}")
        finally:
            mb = max(len(data), 1) / 2**20
            tally.precheck_s_per_mb = max(tally.precheck_s_per_mb, (time.perf_counter() - t_check) / mb)
    for rt in runtimes.for_format(fmt):
        adapter = runtimes.get(rt)
        counter = tally.per_runtime.setdefault(rt, Counter())
        if not adapter.available() or not survivors:
            counter["skipped_not_installed" if survivors else "nothing_to_run"] += 1
            continue
        try:
            res = measure_mutants([_job(p, rt, shapes or [], mem_limit_mb) for _, p in survivors], adapter.python())
        except Exception as e:  # noqa: BLE001
            for i, _ in survivors:
                note(i, "harness_crashed", f"{type(e).__name__}: {e}")
            continue
        for (i, path), r in zip(survivors, res):
            st = r["status"]
            outcome = {"ok": "loaded", "worker_crashed": "worker_crashed_caught",
                       "worker_hung": "worker_hung_killed"}.get(st)
            if outcome is None:
                outcome = "rejected_by_runtime" if is_clear(r.get("error", ""), path) else "unclear_error"
            counter[outcome] += 1
            note(i, outcome, f"{hows[i]}: {rt}: {r.get('error', '')}")
            if outcome in ("worker_crashed_caught", "worker_hung_killed") and keep:
                keep.mkdir(parents=True, exist_ok=True)
                fsutil.write_atomic(keep / f"{outcome}-{rt}-{path.name}", path.read_bytes())
    for i, outcome in worst.items():
        tally.outcomes[outcome] += 1
        tally.examples.setdefault(outcome, errors[i][:300])
    tally.seconds = time.perf_counter() - t0
    log(f"[fuzz] {fmt}: {json.dumps({k: v for k, v in tally.summary().items() if k != 'examples'})}")
    return tally


def seed_files(artifacts: Path, model: str = "digits_cnn") -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted((artifacts / model).iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.suffix in EXTENSIONS:
            out.setdefault(EXTENSIONS[f.suffix], []).append(f)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=fsutil.ROOT / ".cache" / "test-artifacts")
    ap.add_argument("--per-format", type=int, default=1000)
    ap.add_argument("--formats", default="tflite,pte,ptl")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    ap.add_argument("--keep", type=Path, default=None, help="copy mutants that crash or hang a worker here")
    args = ap.parse_args(argv)
    seeds = seed_files(args.artifacts)
    if not seeds:
        print(f"error: no digits_cnn artifacts under {args.artifacts}: run `make test` or "
              f"`python -m pipeline export --models digits_cnn --artifacts {args.artifacts}` first", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    summary = []
    with tempfile.TemporaryDirectory(prefix="mb-fuzz-") as tmp:
        for fmt in [f for f in args.formats.split(",") if f]:
            if fmt not in seeds:
                print(f"error: no {fmt} artifacts under {args.artifacts}/digits_cnn", file=sys.stderr)
                return 2
            shapes = [[1, 1, 8, 8]] if fmt == "ptl" else None
            summary.append(fuzz_format(fmt, seeds[fmt], args.per_format, Path(tmp), args.seed, shapes,
                                       keep=args.keep).summary())
    total = time.perf_counter() - t0
    print(f"[fuzz] total {total:.0f}s")
    if args.out:
        fsutil.write_json_atomic(args.out, {"seconds": total, "formats": summary})
    bad = sum(s["harness_crashed"] + s["unclear_error"] for s in summary)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
