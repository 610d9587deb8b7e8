"""How long the pipeline itself takes, against its budgets (a benchmark, not a timed test).

    python -m pipeline.tools.bench_pipeline          # make bench-pipeline

Runs in a scratch copy of the source tree (so editing a model file to test invalidation never touches
yours): cold `export` of the whole zoo, a warm re-run with nothing changed, a re-run after one model's
file changed (only that model may be redone), `bench` at default settings (what `make bench-mobile`
adds to a done export), and, for information, a cold `probe` (`make probes`, the operator matrix). Writes
`results/pipeline_timing.json` and a `pipeline` record, and prints each figure beside its budget, then
where the measured run's seconds went (`phases_s`: stage -> phase -> seconds, summed from the
`time_<phase>_s` metrics of its train, export and bench records; `pipeline/report/timeprofile.py`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil
from pipeline.schema import Record


@dataclass(frozen=True)
class Budgets:
    cold_export_s: float = 360.0    # issue 20: cold `make export` of the default zoo <= 6 minutes
    warm_export_s: float = 15.0
    bench_s: float = 300.0          # issue 20: bench at default settings <= 5 minutes
    warm_bench_mobile_s: float = 15.0   # export + bench again with nothing changed


COPY_IGNORE = shutil.ignore_patterns(".venv*", "artifacts", "results", ".cache", ".git", "__pycache__",
                                     "runs", ".device")
DEVICE = Path("device_tests") / ".device"


def _scratch_tree(tmp: str) -> Path:
    """A copy of the source tree (no venvs, artifacts, results or git) to run the pipeline in. The
    emulated device (built by `make device`, not part of the pipeline's work) is linked, not copied, so
    the bench measures its device column as `make bench-mobile` does."""
    tree = Path(tmp) / "tree"
    shutil.copytree(fsutil.ROOT, tree, ignore=COPY_IGNORE)
    if (fsutil.ROOT / DEVICE).is_dir():
        (tree / DEVICE).symlink_to(fsutil.ROOT / DEVICE, target_is_directory=True)
    return tree


def _run(tree: Path, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tree, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"`python -m pipeline {' '.join(args)}` failed ({p.returncode}): "
                           f"{(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    return time.perf_counter() - t0, p.stdout


def _redone(log: str) -> list[str]:
    """Export lines that did work (not 'up to date')."""
    return [ln for ln in log.splitlines() if ln.startswith("[export ") and "up to date" not in ln]


def time_pipeline(models: str, jobs: int, log=print, probe: bool = False, keep: bool = False) -> dict:
    import models as registry
    names = registry.select(models)
    sel = ["--models", ",".join(names)]
    with tempfile.TemporaryDirectory(prefix="mb-pipeline-") as tmp:
        tree = _scratch_tree(tmp)
        log(f"[bench-pipeline] scratch tree {tree}; models: {', '.join(names)}")
        cold, _ = _run(tree, "export", *sel, "--jobs", str(jobs))
        log(f"[bench-pipeline] cold export: {cold:.1f}s")
        warm, warm_log = _run(tree, "export", *sel, "--jobs", str(jobs))
        log(f"[bench-pipeline] warm export: {warm:.1f}s ({len(_redone(warm_log))} paths redone)")
        victim = names[0]
        src = tree / "models" / f"{victim}.py"
        src.write_text(src.read_text() + "\n# touched by bench_pipeline\n")
        touched, touched_log = _run(tree, "export", *sel, "--jobs", str(jobs))
        redone = _redone(touched_log)
        others = [ln for ln in redone if f" {victim} " not in ln and f"[export {victim}" not in ln]
        log(f"[bench-pipeline] after editing {victim}: {touched:.1f}s, {len(redone)} paths redone, "
            f"{len(others)} of other models")
        bench, _ = _run(tree, "bench", *sel)
        log(f"[bench-pipeline] bench: {bench:.1f}s")
        device = (tree / DEVICE).exists()
        warm_em, _ = _run(tree, "export", *sel, "--jobs", str(jobs))
        warm_b, _ = _run(tree, "bench", *sel)
        log(f"[bench-pipeline] warm bench-mobile (export + bench, nothing changed): {warm_em + warm_b:.1f}s")
        phases = _phases(tree / "results")
        probe_s = None
        if probe:
            probe_s, _ = _run(tree, "probe")   # `make probes` (operator matrix; not part of bench-mobile)
            log(f"[bench-pipeline] probe (cold): {probe_s:.1f}s")
        if keep:   # the measured run's artifacts and results replace this tree's (no second run needed)
            for d in ("artifacts", "results", "runs"):
                if (tree / d).exists():
                    shutil.rmtree(fsutil.ROOT / d, ignore_errors=True)
                    shutil.copytree(tree / d, fsutil.ROOT / d)
            log("[bench-pipeline] kept the run's artifacts/, results/ and runs/ in this tree")
    return {"models": names, "jobs": jobs, "cold_export_s": cold, "warm_export_s": warm,
            "warm_paths_redone": len(_redone(warm_log)), "touched_model": victim,
            "touched_export_s": touched, "touched_paths_redone": len(redone),
            "touched_other_models_redone": len(others), "bench_s": bench,
            "warm_bench_mobile_s": warm_em + warm_b, "device": device, "probe_s": probe_s,
            "phases_s": phases}


def _phases(results: Path) -> dict[str, dict[str, float]]:
    """Where the measured run's seconds went: stage -> phase -> seconds, summed over the train, export
    and bench records it wrote (their `time_<phase>_s` metrics; the table is printed at the end)."""
    from pipeline.report import timeprofile
    from pipeline.schema import read_records
    return timeprofile.totals(read_records(results / "results.jsonl"))


def compare_jobs(models: str, log=print) -> dict[int, float]:
    """Cold export of `models` with 1 worker (2 threads each) and with 2 workers (1 thread each), each in
    a fresh scratch tree: which parallelism wins on this machine (the default `--jobs` keeps the winner)."""
    out = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="mb-jobs-") as tmp:
            out[jobs], _ = _run(_scratch_tree(tmp), "export", "--models", models, "--jobs", str(jobs))
            log(f"[bench-pipeline] cold export of {models} with --jobs {jobs}: {out[jobs]:.1f}s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated (default: the whole zoo)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--probe", action="store_true", help="also time a cold `probe` (make probes)")
    ap.add_argument("--keep", action="store_true",
                    help="replace this tree's artifacts/ and results/ with the measured run's")
    ap.add_argument("--compare-jobs", default="", metavar="MODELS",
                    help="also time a cold export of these models with --jobs 1 and --jobs 2")
    args = ap.parse_args(argv)
    b = Budgets()
    fig = time_pipeline(args.models, args.jobs, probe=args.probe, keep=args.keep)
    if args.compare_jobs:
        fig.update({f"cold_export_jobs{j}_s": v for j, v in compare_jobs(args.compare_jobs).items()})
        fig["compare_jobs_models"] = args.compare_jobs
    checks = [("cold export (training included)", fig["cold_export_s"], b.cold_export_s),
              ("warm export, nothing changed", fig["warm_export_s"], b.warm_export_s),
              ("bench at default settings (export done; device column "
               f"{'included' if fig['device'] else 'skipped: no device built'})", fig["bench_s"], b.bench_s),
              ("warm bench-mobile (export + bench, nothing changed)", fig["warm_bench_mobile_s"],
               b.warm_bench_mobile_s)]
    ok = True
    print("\n| step | measured s | budget s | holds |\n|---|---|---|---|")
    for name, got, budget in checks:
        ok &= got <= budget
        print(f"| {name} | {got:.1f} | {budget:.0f} | {'yes' if got <= budget else 'NO'} |")
    only_one = fig["warm_paths_redone"] == 0 and fig["touched_other_models_redone"] == 0
    ok &= only_one
    print(f"| warm run redoes nothing; editing {fig['touched_model']} redoes only its paths | "
          f"{fig['warm_paths_redone']} / {fig['touched_other_models_redone']} | 0 / 0 | {'yes' if only_one else 'NO'} |")
    if fig["probe_s"] is not None:
        print(f"| make probes, cold (operator matrix, not budgeted) | {fig['probe_s']:.1f} | – | – |")
    for j in (1, 2):
        if f"cold_export_jobs{j}_s" in fig:
            print(f"| cold export of {fig['compare_jobs_models']}, --jobs {j} | {fig[f'cold_export_jobs{j}_s']:.1f} | – | – |")
    print(f"\nWhere the measured run's seconds went (stage / phase, from its records):\n")
    for stage, per in fig["phases_s"].items():
        print(f"- {stage}: " + ", ".join(f"{ph} {s:.1f} s" for ph, s in sorted(per.items(), key=lambda kv: -kv[1])))
    fsutil.write_json_atomic(args.results / "pipeline_timing.json", fig)
    from pipeline.stages import save_records
    save_records(args.results, [Record(kind="pipeline", model="zoo", status="ok",
                                       metrics={**{k: float(v) for k, v in fig.items() if isinstance(v, (int, float)) and v == v},
                                                **{f"time_{st}_{ph}_s": v for st, per in fig["phases_s"].items()
                                                   for ph, v in per.items()}},
                                       info={"models": fig["models"], "budgets": b.__dict__})])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
