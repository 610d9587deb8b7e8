"""Host-side handle on the emulated ARM64 device built by setup_device.py.

`Device.load()` returns the device or the one-line reason it cannot be used (the tests skip
with it). `run()` executes runner.py in the guest under one emulated core model, with the
instruction-counting plugin, and returns the outputs and the instruction counts.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "runner.py"
DEVICE_DIR = Path(os.environ.get("DEVICE_DIR", HERE / ".device"))
RUNTIME_OF_EXT = {".tflite": "litert", ".pte": "executorch"}
DEVICE_NAME = "emulated-arm64"


def recipe_hash() -> str:
    sys.path.insert(0, str(HERE))
    try:
        import setup_device
        return setup_device.recipe_hash()
    finally:
        sys.path.remove(str(HERE))


@dataclass
class GuestRun:
    outputs: dict
    meta: dict
    markers: dict          # marker id -> guest instruction count
    total_insns: int
    vcpus: int
    wall_s: float          # emulated wall time: NOT a latency, only for budgeting

    def insns_per_inference(self) -> float:
        n, b = self.meta["count_runs"], self.meta.get("marker_base", 0)
        return (self.markers[b + 2] - self.markers[b + 1]) / n


class Device:
    def __init__(self, info: dict):
        self.info = info
        self.qemu = info["qemu"]
        self.cpus = list(info["cpus"])
        self.runtimes = info["runtimes"]

    @classmethod
    def load(cls) -> tuple["Device | None", str]:
        dev_json = DEVICE_DIR / "device.json"
        if not dev_json.exists():
            return None, f"emulated device not built ({dev_json} missing): run `make device` or device_tests/setup_device.py"
        info = json.loads(dev_json.read_text())
        if info.get("recipe_hash") != recipe_hash():
            return None, "emulated device is stale (its recipe changed): rerun device_tests/setup_device.py"
        if not shutil.which(info["qemu"]):
            return None, f"{info['qemu']} not found: apt-get install qemu-user"
        for p in (info["guest_python"], info["plugin"]):
            if not Path(p).exists():
                return None, f"emulated device incomplete ({p} missing): rerun device_tests/setup_device.py"
        return cls(info), ""

    def sites(self, runtime: str) -> list[str]:
        return self.runtimes[runtime]["sites"]

    def env(self, runtime: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_", "OMP_", "QEMU_"))}
        env.update(PYTHONPATH=":".join(self.sites(runtime)), PYTHONHASHSEED="0",
                   PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
        return env

    def run(self, artifact: Path, inputs: Path, outputs: Path, cpu: str, count_runs: int = 5,
            limit: int = 16, timeout: float = 900) -> GuestRun:
        r = self.run_many([(artifact, inputs, outputs)], cpu, count_runs, limit, timeout)[0]
        if isinstance(r, Exception):
            raise r
        return r

    def run_args(self, args: list[str], cpu: str, runtime: str, counts: Path, timeout: float = 3600,
                 pythonpath: tuple[str, ...] = (), box=None, scratch: Path | None = None
                 ) -> tuple[subprocess.CompletedProcess, dict, int, int, float]:
        """The guest Python with `args` on core `cpu`, instructions counted -> (the process, marker id ->
        instruction count, total instructions, guest threads, emulated wall seconds). `pythonpath`:
        folders put before the runtime's site (the project, for a module of ours); `box`: a
        `pipeline.sandbox.Sandbox` for a user's file (`scratch`: its writable folder)."""
        cmd = [self.qemu, "-cpu", cpu, "-L", self.info["cpus"][cpu]["root"],
               "-plugin", f"{self.info['plugin']},out={counts}", self.info["guest_python"], *args]
        env = self.env(runtime)
        if pythonpath:
            env["PYTHONPATH"] = ":".join([*pythonpath, env["PYTHONPATH"]])
        if box is not None:
            cmd, env = box.wrap(cmd, scratch or counts.parent), box.env(env, scratch or counts.parent)
        t0 = time.time()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.time() - t0
        markers, total, vcpus = {}, 0, 0
        if counts.exists():
            for line in counts.read_text().splitlines():
                parts = line.split()
                if parts[0] == "marker":
                    markers[int(parts[1])] = int(parts[2])
                elif parts[0] == "exit":
                    total, vcpus = int(parts[1]), int(parts[3])
        return p, markers, total, vcpus, wall

    def run_many(self, jobs: list[tuple[Path, Path, Path]], cpu: str, count_runs: int = 5, limit: int = 16,
                 timeout: float = 3600, box=None) -> list["GuestRun | Exception"]:
        """Run (artifact, inputs, outputs) jobs of one runtime in ONE guest process on core `cpu`; `box`: a
        `pipeline.sandbox.Sandbox` for a user's file (the outputs' folder is its scratch)."""
        runtimes = {RUNTIME_OF_EXT[Path(a).suffix] for a, _, _ in jobs}
        assert len(runtimes) == 1, f"one runtime per guest process, got {runtimes}"
        first_out = Path(jobs[0][2])
        counts = first_out.with_suffix(".counts.txt")
        job_file = first_out.with_suffix(".jobs.json")
        job_file.write_text(json.dumps([{"artifact": str(a), "inputs": str(i), "outputs": str(o),
                                         "limit": limit, "count_runs": count_runs} for a, i, o in jobs]))
        p, markers, total, vcpus, wall = self.run_args([str(RUNNER), "--jobs", str(job_file)], cpu,
                                                       runtimes.pop(), counts, timeout, box=box,
                                                       scratch=first_out.parent)
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        results: list = []
        for a, _, o in jobs:
            if Path(o).exists():
                outs, meta = load_outputs(Path(o))
                results.append(GuestRun(outs, meta, markers, total, vcpus, wall))
            else:
                results.append(RuntimeError(f"guest run of {Path(a).name} on {cpu} exited {p.returncode}:\n{tail}"))
        return results


def run_host(artifact: Path, inputs: Path, outputs: Path, limit: int = 16, timeout: float = 600) -> tuple[dict, dict]:
    """The same runner with the host venv's runtimes: the reference outputs."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    p = subprocess.run([sys.executable, str(RUNNER), str(artifact), str(inputs), str(outputs),
                        "--limit", str(limit)], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"host run exited {p.returncode}:\n{tail}")
    return load_outputs(outputs)


def load_outputs(path: Path) -> tuple[dict, dict]:
    with np.load(path) as z:
        outs = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return outs, meta
