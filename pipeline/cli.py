"""Command line: `python -m pipeline {train,export,bench,probe,quant-debug,report,check}`; the Makefile wraps these."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _log(msg: str) -> None:
    print(msg, flush=True)


def _names(arg: str) -> list[str]:
    import models
    return models.select(arg)  # names and tier:<tier> words; unknown ones fail here, listing the valid ones


def _paths(arg: str) -> list[str]:
    from export import registry
    names = [n for n in arg.split(",") if n]
    for n in names:
        registry.get(n)
    return names


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().replace("x", ",").split(",") if d)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected numbers like 1,3,96,96") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"--shape {text!r}: every dimension must be >= 1")
    return dims


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0, got 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description=(
        "mobilebench: train PyTorch/Keras twins, export them along every mobile path, "
        "benchmark with the real runtimes, report."))
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--results", type=Path, default=Path("results"))
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train both twins and the weight-transfer twin")
    t.add_argument("--models", default="", help="comma-separated model names or tier:phone, tier:all "
                                                "(default: the toy tier)")
    t.add_argument("--force", action="store_true", help="retrain even when the cache is fresh")

    e = sub.add_parser("export", help="train if needed, then run every export path")
    e.add_argument("--models", default="")
    e.add_argument("--paths", default="", help="comma-separated export paths (default: all)")
    e.add_argument("--force", action="store_true", help="re-export even when up to date")
    e.add_argument("--jobs", type=_positive_int, default=2, help="models exported in parallel")

    b = sub.add_parser("bench", help="benchmark artifacts (ours, or the files you name)")
    b.add_argument("files", nargs="*", type=Path, help=".tflite/.pte/.ptl files of your own")
    b.add_argument("--models", default="")
    b.add_argument("--profiles", default="", help="device profiles, comma-separated")
    b.add_argument("--shape", type=_shape, action="append", default=[],
                   help="input shape override for your own file, once per input, e.g. 1,3,224,224")
    b.add_argument("--min-runs", type=_positive_int)
    b.add_argument("--min-seconds", type=_nonneg_float)
    b.add_argument("--timeout", type=_positive_float, dest="timeout_s")
    b.add_argument("--repeats", type=_positive_int, help="steady runs per measurement (default 3)")
    b.add_argument("--no-peer", dest="peer", action="store_const", const=False,
                   help="skip the check against LiteRT's own litert-benchmark")
    b.add_argument("--no-op-profile", dest="op_profile", action="store_const", const=False,
                   help="skip the per-operator profiles")

    pr = sub.add_parser("probe", help="operator support matrix: one-operator models x every export path")
    pr.add_argument("--ops", default="", help="comma-separated probe names (default: all)")
    pr.add_argument("--paths", default="", help="comma-separated export paths (default: all but ptl_mobile_optimized)")
    pr.add_argument("--jobs", type=_positive_int, default=2, help="worker processes in parallel")

    q = sub.add_parser("quant-debug", help="per-layer int8 error of both stacks + recovery plans")
    q.add_argument("model", help="registered model name")
    q.add_argument("--samples", type=_positive_int, default=200, help="held-out samples for the tables")
    q.add_argument("--no-plans", action="store_true", help="tables only, skip the recovery plans")
    q.add_argument("--force", action="store_true", help="recompute even when the stored result is up to date")

    sub.add_parser("report", help="write results/report.md, report.html and plots from the records")
    c = sub.add_parser("check", help="regression gate: compare results with a baseline (bench_check.toml)")
    c.add_argument("--baseline", type=Path, help="baseline records file, e.g. baselines/digits_cnn.jsonl")
    c.add_argument("--config", type=Path, default=None, help="thresholds (default: bench_check.toml)")
    c.add_argument("--latency", choices=("fail", "warn", "off"), default="",
                   help="override [latency] mode of the config")
    c.add_argument("--write-baseline", type=Path, metavar="FILE",
                   help="write a baseline from the current results instead of checking")
    c.add_argument("--models", default="", help="with --write-baseline: models to keep (default: all)")
    sub.add_parser("list", help="list models, export paths, runtimes and device profiles")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.fsutil import LockedError
    try:
        return _dispatch(args)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except LockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        # every write is atomic: finished work is kept and a re-run resumes from it
        print(f"interrupted: {args.cmd} stopped; finished work is kept, run it again to resume",
              file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    from pipeline import fsutil, stages
    if args.cmd == "list":
        import models
        from export import registry
        from models.spec import TIERS
        from pipeline import profiles, runtimes
        for tier in TIERS:
            print(f"models ({tier}{', default' if tier == models.DEFAULT_TIER else ''}):", ", ".join(models.names(tier)))
        print("paths:   ", ", ".join(registry.all_paths()))
        print("runtimes:", ", ".join(runtimes.names()))
        print("profiles:", ", ".join(profiles.PROFILES))
        return 0
    if args.cmd == "report":
        return stages.report(args.results, log=_log)
    if args.cmd == "check":
        from pipeline import check
        from pipeline.schema import read_records
        if args.write_baseline:
            n = check.write_baseline(read_records(stages.results_file(args.results)), args.write_baseline,
                                     [m for m in args.models.split(",") if m])
            _log(f"[check] wrote {n} records to {args.write_baseline}")
            return 0
        if not args.baseline:
            raise ValueError("check: give --baseline FILE (or --write-baseline FILE)")
        return check.run(args.baseline, stages.results_file(args.results), args.config or check.CONFIG,
                         args.latency, log=_log)
    # bad names fail before any lock is taken or folder made
    if args.cmd in ("train", "export") or (args.cmd == "bench" and not args.files):
        _names(args.models)
    if args.cmd == "export":
        _paths(args.paths)
    # the results tree, and the artifacts tree (exclusive for train/export; shared for bench, which only
    # reads it; not at all when benchmarking the user's own files)
    reads_artifacts = args.cmd in ("train", "export") or (args.cmd == "bench" and not args.files)
    with fsutil.run_lock(args.results, args.cmd), \
            (fsutil.run_lock(args.artifacts, args.cmd, shared=args.cmd == "bench") if reads_artifacts
             else contextlib.nullcontext()):
        if args.cmd == "train":
            from pipeline.train import train
            import models
            recs = [train(models.get(n), args.artifacts, args.force, log=_log) for n in _names(args.models)]
            stages.save_records(args.results, recs)
            return 0 if all(r.status == "ok" for r in recs) else 1
        if args.cmd == "export":
            recs = stages.export(_names(args.models), args.artifacts, _paths(args.paths), args.force,
                                 args.jobs, log=_log)
            stages.save_records(args.results, recs)
            return 0
        if args.cmd == "bench":
            return stages.bench(args, log=_log)
        if args.cmd == "probe":
            from probes import harness
            recs = harness.run([n for n in args.ops.split(",") if n], _paths(args.paths), args.artifacts,
                               args.results, args.jobs, log=_log)
            harness.save(args.results, recs)
            return stages.report(args.results, log=_log)
        if args.cmd == "quant-debug":
            from pipeline import quant_recover
            name = _names(args.model)[0]
            recs, text = quant_recover.run(name, args.artifacts, args.samples,
                                           not args.no_plans, log=_log, force=args.force)
            # the run yields the model's whole quant_debug set: older plans/failures must not linger
            stages.save_records(args.results, recs, drop=lambda r: r.kind == "quant_debug" and r.model == name)
            print(text)
            return 0 if any(r.status == "ok" for r in recs) else 1
    return 2
