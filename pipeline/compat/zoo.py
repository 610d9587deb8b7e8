"""The zoo's artifacts on the version ladder: `python -m pipeline compat` (`make compat`).

    python -m pipeline compat --models digits_cnn --ladder default

Each .tflite/.onnx artifact runs on each released runtime of its format on the model's eval set (the
bench's samples: the same inputs, the Keras layout for Keras twins), compared with its twin's reference
outputs exactly as the bench compares them (`bench.stats.agreement`), and judged by the bench's rule
(`parity.judge` with the model's `parity.for_zoo` bounds). The records go to results/results.jsonl.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline import fsutil, parity
from pipeline.compat import records as compat_records
from pipeline.schema import Record


def run(exports: list[Record], artifacts: Path, which: str, cache_dir: Path, jobs: int = 2,
        rebuild: bool = False, log=print) -> list[Record]:
    import tempfile

    import models
    from pipeline.bench.stats import agreement
    t0 = time.perf_counter()
    # a generative artifact (prefill/decode entry points with a KV cache) has no eval-set reference
    # outputs to agree with: the generation bench measures it
    exports = [e for e in exports if "generation" not in e.info]
    eval_sha: dict[str, str] = {}
    refs: dict[tuple[str, str], np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="mb-compat-in-") as tmp:
        def samples_of(e: Record) -> tuple[Path, str]:
            """The eval inputs in the artifact's layout, written once per model and layout."""
            layout = "nhwc" if e.info.get("input_layout") == "nhwc" else "same"
            npz = artifacts / e.model / "train" / "eval.npz"
            out = Path(tmp) / f"{e.model}-{layout}.npz"
            if not out.exists():
                with np.load(npz) as z:
                    x = z["x"].astype(np.float32)
                np.savez(out, in_0=np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "nhwc" and x.ndim == 4
                         else x)
            if e.model not in eval_sha:
                eval_sha[e.model] = fsutil.sha256_file(npz)
            return out, fsutil.sha256_text(eval_sha[e.model], e.source, layout)

        def compare(e: Record, outputs: list) -> dict:
            key = (e.model, e.source)
            if key not in refs:
                with np.load(artifacts / e.model / "train" / "eval.npz") as z:
                    refs[key] = z[f"ref_{e.source}"]
            out = outputs[0].reshape(len(outputs[0]), -1).astype(np.float32)
            return agreement(out, refs[key][:len(out)])

        def judge(e: Record, metrics: dict) -> tuple[str, str]:
            v = parity.judge(metrics, e.quantization, parity.for_zoo(models.get(e.model), e.quantization))
            return v.status, v.reason

        recs = compat_records.measure_exports(exports, samples_of, compare, judge, which, cache_dir, jobs,
                                              rebuild, log)
    log(f"[compat] {len(recs)} measurements of {len({r.artifact for r in recs})} artifacts on "
        f"{len({r.runtime for r in recs})} releases in {time.perf_counter() - t0:.1f}s")
    return recs


def stage(args, log=print) -> int:
    """`python -m pipeline compat`: the ladder over the exported artifacts of `--models`, saved with the
    other records (an artifact's records from older bytes are dropped), then the report."""
    import models
    from pipeline import stages
    from pipeline.artifact import ArtifactId
    names = models.select(args.models)
    exports = stages.collect_export_records(args.artifacts, names)
    if not any(r.kind == "export" and r.status == "ok" for r in exports):
        log(f"no exported artifacts under {args.artifacts}: run `make export` first")
        return 1
    recs = run(exports, args.artifacts, args.ladder, args.results / "cache" / "compat", args.jobs, args.rebuild, log)
    current = {ArtifactId.of(e).label: e.artifact_sha256 for e in exports if e.kind == "export"}
    # with the export records they judge (as the bench saves them): the report reads both
    stages.save_records(args.results, exports + recs, drop=lambda r: r.kind == "compat" and r.model in names and
                        current.get(ArtifactId.of(r).label) != r.artifact_sha256)
    return stages.report(args.results, log=log)
