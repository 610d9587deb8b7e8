"""Peer check: LiteRT's own benchmark tool on the same .tflite, threads and CPU affinity as ours.

    peer.run_peer(Path("model.tflite"), threads=1, cpus=(0,), mem_limit_mb=0, runs=500)   # one run
    with peer.Server(mem_limit_mb, timeout_s) as s: s.run(path, threads, cpus)           # many, one process
    # -> the tool's result dict, latency in ms unrounded, or {"error": first line}

The tool runs in a worker of `pipeline/workers.py` (`python -m pipeline.bench.peer JOB.json`): its own
process, under the profile's memory limit, killed after `timeout_s` without a result.

ai-edge-litert ships `litert-benchmark` (ai_edge_litert/tools/benchmark_litert_model.py; there is no
C++ `benchmark_model` binary in the wheel). It runs the model through the CompiledModel API with
pre-filled input buffers and times `run_by_name` alone. We run that tool's own code unchanged except
one thing: it rounds every result to 0.01 ms, too coarse for sub-0.1 ms models, so `round` is replaced
by the identity in its module before `main()` (see `_main`). Our median (bound inputs, invoke() alone)
must agree with its median within the policy's `PEER_AGREEMENT`; the record keeps both numbers.

The two harnesses have different fixed costs per call (the tool's Python `run_by_name` with buffer
dicts: ~5 us; our bound `invoke()`: ~1 us), which is >10% of a 20 us model. So both are also run on
the one-op model (`pipeline/bench/data/trivial.tflite`) and compared net of that fixed cost
(`peer_net_diff_pct`); the check passes when the raw or the net difference is within tolerance.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from pipeline.policy import PEER_AGREEMENT


def run_peer(artifact: Path, threads: int, cpus: tuple = (), mem_limit_mb: int = 0, runs: int = 300,
             warmup: int = 10, timeout_s: float = 120.0) -> dict:
    """The tool's result dict (latency in ms, unrounded), or {"error": first line}: one run, in a worker."""
    with Server(mem_limit_mb, timeout_s) as server:
        return server.run(artifact, threads, cpus, runs, warmup)


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
                               <= PEER_AGREEMENT * 100)
    return out


class Server:
    """One tool process for many models (a `workers.Session`): its Python start and LiteRT import (~3 s on a
    busy 2-core machine) are paid once per bench worker, not per model; the tool's own, unchanged `main()`
    runs for each request (`_one`). The caller runs it between its own timings, never beside them."""

    def __init__(self, mem_limit_mb: int = 0, timeout_s: float = 120.0) -> None:
        from pipeline import workers
        self.mem_limit_mb, self.timeout_s = int(mem_limit_mb), float(timeout_s)
        self._session = workers.Session(workers.Job("pipeline.bench.peer", params={"mem_limit_mb": self.mem_limit_mb},
                                                    timeout_s=self.timeout_s))
        self._trivial: dict[tuple, float] = {}
        self._n = 0

    def run(self, artifact, threads: int, cpus: tuple = (), runs: int = 300, warmup: int = 10) -> dict:
        """As `run_peer`: the tool's result dict (ms, unrounded), or {"error": first line}."""
        self._n += 1
        res = self._session.call({"id": self._n, "cpus": list(cpus),
                                  "args": [f"--model={artifact}", f"--num_threads={threads}", f"--num_runs={runs}",
                                           f"--warmup_runs={warmup}"]})
        if res.get("status") != "ok":
            return {"error": f"litert-benchmark failed: {res.get('error', '?')[:200]}"}
        return res["result"]

    def trivial_median_ms(self, threads: int, cpus: tuple = ()) -> float:
        """`trivial_median_ms` in this process (once per threads and CPUs)."""
        if (threads, cpus) not in self._trivial:
            res = self.run(TRIVIAL, threads, cpus, runs=2000)
            self._trivial[(threads, cpus)] = float(res["latency"]["median_ms"]) if "latency" in res else float("nan")
        return self._trivial[(threads, cpus)]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_tool: list = []      # the worker's imported tool module, once


def _one(item: dict, params: dict) -> dict:
    """The worker's item: the tool's `main()` on one model, its table kept off the run log, its JSON read back."""
    import contextlib
    import io
    if not _tool:
        mem = int(params["mem_limit_mb"])
        if mem:
            resource.setrlimit(resource.RLIMIT_AS, (mem << 20, mem << 20))
        from ai_edge_litert.tools import benchmark_litert_model as tool
        tool.round = lambda x, ndigits=None: x   # keep full precision in its JSON (module global shadows builtin)
        _tool.append((tool, os.sched_getaffinity(0)))
    tool, every_cpu = _tool[0]
    os.sched_setaffinity(0, set(item["cpus"]) or every_cpu)
    with tempfile.TemporaryDirectory(prefix="mb-peer-") as tmp:
        out = Path(tmp) / "peer.json"
        sys.argv = ["litert-benchmark", *item["args"], f"--result_json={out}"]
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                tool.main()
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a model the tool refuses: its error, next request
            return {"status": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        if not out.exists():
            return {"status": "failed", "error": "no result written"}
        return {"status": "ok", "result": json.loads(out.read_text())}


if __name__ == "__main__":
    from pipeline import workers
    sys.exit(workers.serve(_one))
