"""Command line: `python -m pipeline {train,export,bench,probe,quant-debug,package,report,explore,check}`; the Makefile wraps these."""
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
    if text.strip().lower() in ("", "scalar"):
        return ()   # a 0-d input (e.g. a sample rate beside the audio)
    try:
        dims = tuple(int(d) for d in text.lower().replace("x", ",").split(",") if d)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape {text!r}: expected numbers like 1,3,96,96") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"--shape {text!r}: every dimension must be >= 1")
    return dims


def _input_file(text: str) -> tuple[str, str]:
    name, sep, f = text.partition("=")
    if not sep or not name or not f:
        raise argparse.ArgumentTypeError(f"--input {text!r}: expected NAME=FILE.npy")
    if not Path(f).is_file():
        raise argparse.ArgumentTypeError(f"--input {text!r}: {f}: no such file")
    return name, str(Path(f).resolve())


def _ladder(text: str) -> str:
    from pipeline.compat import ladder
    try:
        for fmt in ladder.formats():
            ladder.select(fmt, text)      # unknown rung ids: one line listing the known ones
    except (KeyError, ValueError) as e:
        raise argparse.ArgumentTypeError(e.args[0] if isinstance(e, KeyError) else str(e)) from None
    return text


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


VERBOSE = ("-v", "--verbose")
VERBOSE_HELP = "show the libraries' own output on the terminal too (else: results/logs/<command>-<time>.log)"


def _verbose_flag(p: argparse.ArgumentParser) -> None:
    """-v after the command as well; SUPPRESS so the command's default does not undo a -v before it."""
    p.add_argument(*VERBOSE, action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description=(
        "mobilebench: train PyTorch/Keras twins, export them along every mobile path, "
        "benchmark with the real runtimes, report."))
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument(*VERBOSE, action="store_true", help=VERBOSE_HELP)
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
    e.add_argument("--profile", action="store_true",
                   help="end with a table of where the seconds went (per model: training; per path: phases)")
    e.add_argument("--etrecord", action="store_true",
                   help="the .pte paths also write their ETRecord beside the artifact, from the same lowering "
                   "(the bench's operator profile then names each event's aten ops)")

    b = sub.add_parser("bench", help="benchmark artifacts (ours, or the files you name)")
    b.add_argument("files", nargs="*", type=Path, help=".tflite/.pte/.ptl/.onnx/.mlpackage/.aimodel files of your own")
    b.add_argument("--models", default="")
    b.add_argument("--profiles", default=None, help="device profiles, comma-separated (each measured once)")
    b.add_argument("--shape", type=_shape, action="append", default=[],
                   help="input shape override for your own file, once per input, e.g. 1,3,224,224; "
                   "'scalar' (or '') for a 0-d input")
    b.add_argument("--input", type=_input_file, action="append", default=[], dest="input_files",
                   metavar="NAME=FILE.npy", help="value of one input of your own file (instead of random)")
    b.add_argument("--min-runs", type=_positive_int)
    b.add_argument("--min-seconds", type=_nonneg_float)
    b.add_argument("--ci-pct", type=_nonneg_float, dest="ci_pct",
                   help="a timing repeat stops once its median's 95%% CI is within +-this %% "
                   "(default 1; 0 = at --min-runs and --min-seconds)")
    b.add_argument("--timeout", type=_positive_float, dest="timeout_s")
    b.add_argument("--repeats", type=_positive_int, help="steady runs per measurement (default 3)")
    b.add_argument("--no-peer", dest="peer", action="store_const", const=False,
                   help="skip the check against LiteRT's own litert-benchmark")
    b.add_argument("--no-op-profile", dest="op_profile", action="store_const", const=False,
                   help="skip the per-operator profiles")
    b.add_argument("--no-device", dest="device", action="store_false",
                   help="skip the emulated ARM64 column (pipeline/bench/device.py)")
    b.add_argument("--profile", action="store_true",
                   help="print at the end where this run's seconds went (per phase of the measurements)")

    cp = sub.add_parser("compat", help="run each .tflite/.onnx artifact on a ladder of released runtime versions "
                        "(docs/compat.md): the oldest release that loads it and matches")
    cp.add_argument("--models", default="")
    cp.add_argument("--ladder", default="default", type=_ladder,
                    help="default (one release per minor line), full (every release, TensorFlow's own "
                    "interpreters too) or rung ids, e.g. ai-edge-litert==1.0.1,onnxruntime==1.17.3")
    cp.add_argument("--jobs", type=_positive_int, default=2, help="releases measured in parallel")
    cp.add_argument("--rebuild", action="store_true",
                    help="try again to build the environments whose build failed (kept for a day)")

    pr = sub.add_parser("probe", help="operator support matrix: one-operator models x every export path")
    pr.add_argument("--ops", default="", help="comma-separated probe names (default: all)")
    pr.add_argument("--paths", default="", help="comma-separated export paths (default: all but ptl_mobile_optimized)")
    pr.add_argument("--jobs", type=_positive_int, default=2, help="worker processes in parallel")

    q = sub.add_parser("quant-debug", help="per-layer int8 error of both stacks + recovery plans")
    q.add_argument("model", help="registered model name")
    q.add_argument("--samples", type=_positive_int, default=200, help="held-out samples for the tables")
    q.add_argument("--no-plans", action="store_true", help="tables only, skip the recovery plans")
    q.add_argument("--force", action="store_true", help="recompute even when the stored result is up to date")

    pk = sub.add_parser("package", help="your own model -> verified, benchmarked Android/iOS bundle in DIR/NAME/",
                        description="Export your model along every matching path, check each artifact against "
                        "it (parity), benchmark, choose per platform and write DIR/NAME/. A file.py:function "
                        "source RUNS YOUR CODE (as your own training script would); .pt2, .keras (safe_mode) "
                        "and SavedModel sources run none.")
    pk.add_argument("source", help="model.pt2 | model.keras | saved_model_dir/ | file.py:function | "
                    "lm_folder/ (Hugging Face: config.json + safetensors + tokenizer.json; docs/generative.md)")
    pk.add_argument("--samples", type=Path, help=".npz, one array per input (by name or arr_0..), batch first: "
                    "calibration and parity set (default: seeded random, with a warning)")
    pk.add_argument("--prompts", type=Path, help="a language model folder: prompts, one per line (parity, timing, "
                    "perplexity; default: seeded random token ids, with a warning)")
    pk.add_argument("--context", type=_positive_int, default=0, help="a language model folder: the KV cache "
                    "length (default: 512, at most the model's max_position_embeddings)")
    pk.add_argument("--calib", type=Path, help="separate calibration .npz for the int8 paths (default: --samples)")
    pk.add_argument("--eval", type=Path, help=".npz with the inputs and 'y' labels: adds accuracy")
    pk.add_argument("--labels", type=Path, help="labels file, copied into the bundle")
    pk.add_argument("--out", type=Path, default=Path("dist"), help="bundle folder (default: dist)")
    pk.add_argument("--name", default="", help="bundle name (default: the source's stem)")
    pk.add_argument("--prefer", choices=("balanced", "size", "speed", "accuracy"), default="balanced",
                    help="choice rule (default balanced: smallest within 25%% of the fastest p50)")
    pk.add_argument("--signature", default="serving_default", help="SavedModel signature")
    pk.add_argument("--paths", default="", help="comma-separated export paths (default: every matching one)")
    pk.add_argument("--tolerance", action="append", default=[], metavar="QUANT.FIELD=VALUE",
                    help="override a parity threshold, e.g. int8.min_sqnr_db=10 (docs/manifest.md)")
    pk.add_argument("--profiles", default="", help="device profiles, comma-separated (default: big-core,2-core)")
    pk.add_argument("--ladder", default="default", type=_ladder,
                    help="released runtime versions the candidates run on (docs/compat.md): default, full, "
                    "rung ids, or none to skip (the first run builds one environment per release: minutes)")
    pk.add_argument("--min-runs", type=_positive_int)
    pk.add_argument("--min-seconds", type=_nonneg_float)
    pk.add_argument("--ci-pct", type=_nonneg_float, dest="ci_pct", help="as for bench")
    pk.add_argument("--repeats", type=_positive_int)

    for cmd in (b, pk):                  # the commands that open a user's file (pipeline/sandbox.py)
        cmd.add_argument("--no-sandbox", action="store_true",
                         help="run the workers that open your file without the OS sandbox (bubblewrap); "
                         "recorded in the manifest. Only for files you trust")
    for cmd in (t, e, b, cp, pr, q, pk):     # the commands that run the libraries
        _verbose_flag(cmd)
    rp = sub.add_parser("report", help="write results/report.md, report.html and plots from the records")
    rp.add_argument("--table", action="store_true", help="print every measurement as one table before the answer")
    x = sub.add_parser("explore", help="open one artifact's graph in Model Explorer with per-operator time "
                       "and int8 error overlays (pipeline/explore/)")
    x.add_argument("model", help="registered model name")
    x.add_argument("artifact", help="artifact stem, e.g. keras__tflite_int8 (see results/explorer/index.json)")
    x.add_argument("--host", default="localhost")
    x.add_argument("--port", type=_positive_int, default=8080,
                   help="server port (default 8080: Model Explorer takes the next free one up to 8099)")
    x.add_argument("--no-open", dest="open_browser", action="store_false",
                   help="print the URL instead of opening a browser (headless)")
    x.add_argument("--write-only", action="store_true", help="write the overlay files, start no server")
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


def _absolute(args: argparse.Namespace) -> None:
    """Every path argument resolved once, here, against the folder the command was given in: the workers
    run in the project root, so a relative path handed on would name another file there."""
    for k, v in vars(args).items():
        if isinstance(v, Path):
            setattr(args, k, v.absolute())
        elif isinstance(v, list) and v and all(isinstance(x, Path) for x in v):
            setattr(args, k, [x.absolute() for x in v])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    _absolute(args)
    if getattr(args, "no_sandbox", False):
        from pipeline import sandbox
        os.environ[sandbox.ENV_SWITCH] = "off"    # the workers inherit the user's choice
    from pipeline.fsutil import LockedError
    try:
        return _dispatch(args)
    except (KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"error: {args.cmd}: out of memory (an input declares more than this machine can hold); "
              "nothing was written", file=sys.stderr)
        return 2
    except LockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except OSError as e:
        # a read-only or full results/artifacts folder: one line naming the file; every write is atomic,
        # so what was written before is intact
        where = e.filename or "?"
        print(f"error: cannot write {where}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # every write is atomic: finished work is kept and a re-run resumes from it
        print(f"interrupted: {args.cmd} stopped; finished work is kept, run it again to resume",
              file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    from pipeline import fsutil, runlog, stages
    if args.cmd == "list":
        import models
        from export import registry
        from models.spec import TIERS
        from pipeline import runtimes
        from pipeline.bench import profiles
        for tier in TIERS:
            print(f"models ({tier}{', default' if tier == models.DEFAULT_TIER else ''}):", ", ".join(models.names(tier)))
        print("paths:   ", ", ".join(registry.all_paths()))
        print("runtimes:", ", ".join(runtimes.names()))
        print("profiles:", ", ".join(profiles.PROFILES))
        return 0
    if args.cmd == "report":
        code = stages.report(args.results, log=_log)
        if code == 0:
            stages.answer(args.results, log=_log, full_table=args.table)
        return code
    if args.cmd == "check":
        from pipeline.bench import check
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
    if args.cmd == "package":
        return _package(args)
    if args.cmd == "explore":
        return _explore(args)
    # bad names fail before any lock is taken or folder made
    if args.cmd in ("train", "export", "compat") or (args.cmd == "bench" and not args.files):
        _names(args.models)
    if args.cmd == "export":
        _paths(args.paths)
    if args.cmd == "bench" and args.profiles is not None:
        from pipeline.bench import profiles
        profiles.parse_list(args.profiles)
    # the results tree, and the artifacts tree (exclusive for train/export; shared for bench, which only
    # reads it; not at all when benchmarking the user's own files)
    reads_artifacts = args.cmd in ("train", "export", "compat") or (args.cmd == "bench" and not args.files)
    with fsutil.run_lock(args.results, args.cmd), \
            (fsutil.run_lock(args.artifacts, args.cmd, shared=args.cmd in ("bench", "compat")) if reads_artifacts
             else contextlib.nullcontext()), \
            fsutil.scratch(args.results), \
            runlog.session(args.results, args.cmd, args.verbose) as log:
        # a corrupt results file is found now, not after an hour of measuring (exit 2, one line)
        from pipeline.schema import read_records
        read_records(stages.results_file(args.results))
        if args.cmd == "train":
            from pipeline.train import train
            import models
            recs = [train(models.get(n), args.artifacts, args.force, log=log) for n in _names(args.models)]
            stages.save_records(args.results, recs)
            return 0 if all(r.status == "ok" for r in recs) else 1
        if args.cmd == "export":
            recs = stages.export(_names(args.models), args.artifacts, _paths(args.paths), args.force,
                                 args.jobs, log=log, etrecord=args.etrecord)
            stages.save_records(args.results, recs)
            if args.profile:
                from pipeline.report.export_profile import export_profile
                log(export_profile(recs))
            return 0
        if args.cmd == "bench":
            return stages.bench(args, log=log)
        if args.cmd == "compat":
            from pipeline.compat import zoo
            return zoo.stage(args, log=log)
        if args.cmd == "probe":
            from probes import harness
            recs = harness.run([n for n in args.ops.split(",") if n], _paths(args.paths), args.artifacts,
                               args.results, args.jobs, log=log)
            harness.save(args.results, recs)
            return stages.report(args.results, log=log)
        if args.cmd == "quant-debug":
            from pipeline.quant import recover as quant_recover
            name = _names(args.model)[0]
            recs, text = quant_recover.run(name, args.artifacts, args.samples,
                                           not args.no_plans, log=log, force=args.force)
            # the run yields the model's whole quant_debug set: older plans/failures must not linger
            stages.save_records(args.results, recs, drop=lambda r: r.kind == "quant_debug" and r.model == name)
            log(text)
            return 0 if any(r.status == "ok" for r in recs) else 1
    return 2


def _explore(args) -> int:
    from pipeline import fsutil, stages
    from pipeline.artifact import ArtifactId
    from pipeline.explore import serve
    aid = ArtifactId.parse(_names(args.model)[0], args.artifact)
    with fsutil.run_lock(args.results, "explore"):   # released before the server runs
        overlays = serve.overlays_for(stages.all_records(args.results), args.results, aid)
    for o in overlays:
        _log(f"[explore] {aid.label}: {o.name} ({len(o.values)} nodes) -> {o.file(args.results)}")
    if args.write_only:
        return 0
    return serve.serve(overlays, args.results, args.host, args.port, args.open_browser)


def _package(args) -> int:
    import shlex
    from pipeline import runlog
    from pipeline.bench import harness, profiles
    from pipeline.package import stage
    overrides = {k: getattr(args, k) for k in ("min_runs", "min_seconds", "ci_pct", "repeats")}
    if args.profiles:
        overrides["profiles"] = profiles.parse_list(args.profiles)   # the bench's rule: known, each once
    cfg = harness.config_with(op_profile=False, peer=False, **overrides)
    opts = stage.Options(source=args.source, out=args.out, name=args.name, samples=args.samples, calib=args.calib,
                         eval=args.eval, labels=args.labels, prefer=args.prefer, signature=args.signature,
                         paths=tuple(p for p in args.paths.split(",") if p), tolerances=tuple(args.tolerance),
                         prompts=args.prompts, context=args.context,
                         bench=cfg, work_root=args.artifacts / "package", ladder=args.ladder,
                         command="python -m pipeline " + shlex.join(sys.argv[1:] if args.argv is None else args.argv))
    with runlog.session(args.results, "package", args.verbose) as log:
        return stage.run(opts, log=log)
