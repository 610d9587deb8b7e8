"""Export paths of one trained model, one after another in one process (as an export worker runs them,
sharing the twin's program), with each path's CPU seconds beside its wall seconds and phases: on a shared
machine the CPU seconds are the figure to compare (wall time depends on the load).

    .venv/bin/python scripts/time_export_paths.py digits_cnn \\
        coreai_fp32,coreai_fp16,coreai_w8,coreai_w4,coreai_pal4,et_coreai_fp16

Needs the model trained in artifacts/ (`make train MODELS=...`); writes the artifacts to a temporary
folder, never to artifacts/. The toolchains are imported before the first path, as in a worker that
has exported a model before.
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> int:
    import models
    from export import registry
    from export.run import run_path
    from pipeline.train import load_eval, load_torch
    name, paths = argv[0], argv[1].split(",")
    spec = models.get(name)
    model, data = load_torch(spec, Path("artifacts")), load_eval(spec, Path("artifacts"))
    import coreai_opt.casting  # noqa: F401 - the imports a warm worker has done already
    import coreai_torch  # noqa: F401
    import executorch.exir  # noqa: F401
    shared: dict = {}
    for p in map(registry.get, paths):
        c0, w0 = cpu_seconds(), time.perf_counter()
        rec = run_path(spec, "torch", p, model, data, Path(tempfile.mkdtemp()), shared)
        phases = " ".join(f"{k[5:-2]}={v:.1f}" for k, v in rec.metrics.items() if k.startswith("time_"))
        print(f"{name} {p.name}: {rec.status} cpu={cpu_seconds() - c0:.1f}s wall={time.perf_counter() - w0:.1f}s "
              f"[{phases}] {rec.error[:80]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
