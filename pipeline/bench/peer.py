"""Peer check: LiteRT's own benchmark tool on the same .tflite, threads and CPU affinity as ours.

    .venv/bin/python -m pipeline.bench.peer MODEL.tflite CPUS MEM_MB --num_threads=1 --num_runs=500
    # e.g. CPUS "0" (or "" = all), MEM_MB 0 = no limit; then the tool's own flags; results unrounded

ai-edge-litert ships `litert-benchmark` (ai_edge_litert/tools/benchmark_litert_model.py; there is no
C++ `benchmark_model` binary in the wheel). It runs the model through the CompiledModel API with
pre-filled input buffers and times `run_by_name` alone. We run that tool's own code unchanged except
one thing: it rounds every result to 0.01 ms, too coarse for sub-0.1 ms models, so `round` is replaced
by the identity in its module before `main()` (see `_main`). Our median (bound inputs, invoke() alone)
must agree with its median within `TOLERANCE`; the record keeps both numbers.

The two harnesses have different fixed costs per call (the tool's Python `run_by_name` with buffer
dicts: ~5 us; our bound `invoke()`: ~1 us), which is >10% of a 20 us model. So both are also run on
the one-op model (`pipeline/bench/data/trivial.tflite`) and compared net of that fixed cost
(`peer_net_diff_pct`); the check passes when the raw or the net difference is within tolerance.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from pipeline import procutil

TOLERANCE = 0.10


def run_peer(artifact: Path, threads: int, cpus: tuple = (), mem_limit_mb: int = 0, runs: int = 300,
             warmup: int = 10, timeout_s: float = 120.0) -> dict:
    """The tool's result dict (latency in ms, unrounded), or {"error": first line}."""
    with tempfile.TemporaryDirectory(prefix="mb-peer-") as tmp:
        out = Path(tmp) / "peer.json"
        # the profile's limits are applied by the child itself (no preexec_fn: unsafe in threaded parents)
        cmd = [sys.executable, "-m", "pipeline.bench.peer", str(artifact), ",".join(map(str, cpus)), str(int(mem_limit_mb)),
               f"--num_threads={threads}",
               f"--num_runs={runs}", f"--warmup_runs={warmup}", f"--result_json={out}"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "TF_CPP_MIN_LOG_LEVEL": "2",
               **procutil.child_env()}   # it dies with the harness, like the workers
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"litert-benchmark timed out after {timeout_s:.0f}s"}
        if p.returncode != 0 or not out.exists():
            tail = [ln for ln in (p.stdout + p.stderr).splitlines() if "ERROR" in ln or "Error" in ln][-1:]
            return {"error": f"litert-benchmark exited with {p.returncode}" + (f": {tail[0][:200]}" if tail else "")}
        return json.loads(out.read_text())


TRIVIAL = Path(__file__).resolve().parent / "data" / "trivial.tflite"


@lru_cache(maxsize=None)
def trivial_median_ms(threads: int, cpus: tuple = (), mem_limit_mb: int = 0) -> float:
    """The tool's median on the one-op model: its fixed cost per call (once per process and profile)."""
    res = run_peer(TRIVIAL, threads, cpus, mem_limit_mb, runs=2000)
    return float(res["latency"]["median_ms"]) if "latency" in res else float("nan")


def _pct(a: float, b: float) -> float:
    return (a - b) / b * 100 if b > 0 else float("nan")


def compare(ours_ms: float, peer: dict, ours_trivial_ms: float = float("nan"),
            peer_trivial_ms: float = float("nan")) -> dict[str, float]:
    """Metrics for the record: the peer's median, our median's difference raw and net of fixed cost."""
    med = float(peer["latency"]["median_ms"])
    out = {"peer_median_ms": med, "peer_mean_ms": float(peer["latency"]["avg_ms"]),
           "peer_runs": float(peer["latency"]["num_runs"]), "peer_diff_pct": _pct(ours_ms, med)}
    if ours_trivial_ms == ours_trivial_ms and peer_trivial_ms == peer_trivial_ms:  # not NaN
        out["peer_trivial_median_ms"] = peer_trivial_ms
        out["peer_net_diff_pct"] = _pct(ours_ms - ours_trivial_ms, med - peer_trivial_ms)
    out["peer_agrees"] = float(min(abs(out["peer_diff_pct"]), abs(out.get("peer_net_diff_pct", float("inf"))))
                               <= TOLERANCE * 100)
    return out


def _main(argv: list[str]) -> int:
    procutil.die_with_parent()
    model, cpus, mem_mb, *rest = argv
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    if int(mem_mb):
        resource.setrlimit(resource.RLIMIT_AS, (int(mem_mb) << 20, int(mem_mb) << 20))
    from ai_edge_litert.tools import benchmark_litert_model as tool
    tool.round = lambda x, ndigits=None: x   # keep full precision in its JSON (module global shadows builtin)
    sys.argv = ["litert-benchmark", f"--model={model}", *rest]
    tool.main()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
