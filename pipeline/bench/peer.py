"""Peer check: LiteRT's own benchmark tool on the same .tflite, threads and CPU affinity as ours.

    .venv/bin/python -m pipeline.bench.peer MODEL.tflite CPUS MEM_MB --num_threads=1 --num_runs=500
    # e.g. CPUS "0" (or "" = all), MEM_MB 0 = no limit; then the tool's own flags; results unrounded

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
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from pipeline import procutil
from pipeline.policy import PEER_AGREEMENT



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
                               <= PEER_AGREEMENT * 100)
    return out


DONE = "mobilebench-peer-done"


class Server:
    """One tool process for many models: `python -m pipeline.bench.peer --serve MEM_MB` reads one
    request per line on its stdin and runs the tool's own, unchanged `main()` for each (as `_main`
    does once). Its Python start and LiteRT import (~3 s on a busy 2-core machine) are paid once per
    bench worker, not per model. The caller runs it between its own timings, never beside them."""

    def __init__(self, mem_limit_mb: int = 0) -> None:
        self.mem_limit_mb = int(mem_limit_mb)
        self.proc: subprocess.Popen | None = None
        self._trivial: dict[tuple, float] = {}

    def run(self, artifact, threads: int, cpus: tuple = (), runs: int = 300, warmup: int = 10,
            timeout_s: float = 120.0) -> dict:
        """As `run_peer`: the tool's result dict (ms, unrounded), or {"error": first line}."""
        import select
        if self.proc is None or self.proc.poll() is not None:
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                   "TF_CPP_MIN_LOG_LEVEL": "2", **procutil.child_env()}
            # unbuffered bytes: a buffered reader would hold lines that select() no longer sees
            self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.bench.peer", "--serve", str(self.mem_limit_mb)],
                                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, bufsize=0)
        with tempfile.TemporaryDirectory(prefix="mb-peer-") as tmp:
            out = Path(tmp) / "peer.json"
            req = {"cpus": list(cpus), "args": [f"--model={artifact}", f"--num_threads={threads}", f"--num_runs={runs}",
                                                f"--warmup_runs={warmup}", f"--result_json={out}"]}
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            deadline, got = time.monotonic() + timeout_s, b""
            marker = ("\n" + DONE).encode()
            while marker not in got or not got.endswith(b"\n"):   # the tool's table, then our line
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                    self.close()
                    return {"error": f"litert-benchmark timed out after {timeout_s:.0f}s"}
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    rc = self.proc.wait()
                    self.proc = None
                    return {"error": f"litert-benchmark exited with {rc}"}
                got += chunk
            error = got.rsplit(marker, 1)[1].decode(errors="replace").strip()
            if error or not out.exists():
                return {"error": f"litert-benchmark failed: {error[:200] or 'no result written'}"}
            return json.loads(out.read_text())

    def trivial_median_ms(self, threads: int, cpus: tuple = ()) -> float:
        """`trivial_median_ms` in this process (once per threads and CPUs)."""
        if (threads, cpus) not in self._trivial:
            res = self.run(TRIVIAL, threads, cpus, runs=2000)
            self._trivial[(threads, cpus)] = float(res["latency"]["median_ms"]) if "latency" in res else float("nan")
        return self._trivial[(threads, cpus)]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _serve(mem_mb: str) -> int:
    """`Server`'s process: one tool run per request line, then a DONE line (with the error, if any)."""
    procutil.die_with_parent()
    if int(mem_mb):
        resource.setrlimit(resource.RLIMIT_AS, (int(mem_mb) << 20, int(mem_mb) << 20))
    from ai_edge_litert.tools import benchmark_litert_model as tool
    tool.round = lambda x, ndigits=None: x   # as in _main
    every_cpu = os.sched_getaffinity(0)
    for line in sys.stdin:
        req = json.loads(line)
        os.sched_setaffinity(0, set(req["cpus"]) or every_cpu)
        sys.argv = ["litert-benchmark", *req["args"]]
        error = ""
        try:
            tool.main()
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a model the tool refuses: its error, next request
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        print(f"\n{DONE} {error}", flush=True)
    return 0


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        return _serve(argv[1])
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
