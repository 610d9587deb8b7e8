"""One cached virtual environment per released runtime, made on demand, atomically.

    env = envs.ensure(rung)          # Env(python=".cache/compat/ai-edge-litert-1.2.0/bin/python", ...)
    env.python or env.error          # the interpreter to run the rung's worker with, or why there is none

A rung whose exact release is already installed needs no environment of its own: the project's
`.venv` (ai-edge-litert 2.3.0, onnxruntime 1.31.1) or `.venv-tflite-runtime` (tflite-runtime 2.14.0).
Any other is built in `.cache/compat/<dist>-<version>` (gitignored): `python -m venv --without-pip`,
then this venv's pip installs the rung's requirements into it (`--only-binary :all:`: nothing is
compiled, an old release without a wheel for this Python is a finding), then the rung's adapter runs
the one-operator model of its format (pipeline/bench/data/trivial.*) in it. Only an environment that
passed all three is renamed into place: an interrupted build leaves a hidden `.tmp-*` folder that the
next builder of it removes (a builder holds `.cache/compat/.lock-<name>`), never a half-made environment. A build
that fails is a finding kept for a day in `<name>.failed.json` (pip's or the check's own error), so
a rerun does not pay for it again; `rebuild=True` tries again at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil, procutil
from pipeline.compat.ladder import Rung

CACHE = fsutil.ROOT / ".cache" / "compat"
STAMP = "mobilebench-env.json"
SHARED_VENVS = (fsutil.ROOT / ".venv", fsutil.ROOT / ".venv-tflite-runtime")
PIP_TIMEOUT_S = 1800.0
CHECK_TIMEOUT_S = 300.0
FAILED_KEEP_S = 24 * 3600.0     # a failed build is retried after a day (or with rebuild=True)
BUILD_VERSION = 1               # bump when the recipe below changes: every environment is made again


@dataclass(frozen=True)
class Env:
    rung: Rung
    python: str = ""          # "" when there is none
    error: str = ""           # why there is none (a finding)
    fingerprint: str = ""     # hash of the distributions installed in it (a measurement cache key part)
    built_s: float = 0.0      # seconds this call spent building it (0: reused)
    bytes: int = 0            # its size on disk (0 for a shared venv)


def site_packages(venv: Path) -> Path | None:
    found = sorted(Path(venv).glob("lib/python*/site-packages"))
    return found[0] if found else None


def installed(venv: Path) -> dict[str, str]:
    """Distribution name (normalized) -> version, from the `.dist-info` folders (no interpreter started)."""
    sp = site_packages(venv)
    out = {}
    for d in sp.glob("*.dist-info") if sp else []:
        name, _, version = d.name[:-len(".dist-info")].partition("-")
        out[_norm(name)] = version
    return out


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _fingerprint(venv: Path, rung: Rung) -> str:
    """The versions a measurement in this environment depends on: the runtime's and numpy's (not every
    package of the shared venv: installing an unrelated one there must not void the ladder's cache)."""
    have = installed(venv)
    return fsutil.sha256_text(*[f"{n}=={have.get(n, '')}" for n in (_norm(rung.dist), "numpy")])


def _shared(rung: Rung) -> Path | None:
    """A project venv that has exactly this release installed already."""
    for venv in SHARED_VENVS:
        if (venv / "bin" / "python").exists() and installed(venv).get(_norm(rung.dist)) == rung.version:
            return venv
    return None


def _stamp(rung: Rung) -> dict:
    return {"requirements": rung.requirements(), "no_deps": rung.no_deps, "build_version": BUILD_VERSION,
            "python": sys.version.split()[0]}


def _ready(dest: Path, rung: Rung) -> dict | None:
    """The stamp of a finished environment made by this recipe for this rung, else None."""
    try:
        saved = json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return saved if {k: saved.get(k) for k in _stamp(rung)} == _stamp(rung) else None


def missing(rung: Rung, cache: Path = CACHE) -> bool:
    """Would `ensure` build this release's environment now (none shared, cached or failed lately)?"""
    return _shared(rung) is None and _ready(Path(cache) / rung.env_name, rung) is None and not _failed(cache, rung)


class Builds:
    """The environment builds of one run, stopped together: an interrupted run kills their processes
    (each in a session of its own) and records no failure for a build it stopped."""

    def __init__(self) -> None:
        self._procs: set = set()
        self._lock = threading.Lock()
        self.stopped = False

    def run(self, cmd: list[str], timeout: float, env: dict) -> tuple[int | None, str]:
        """-> (return code, output); (None, why) when it timed out or the builds were stopped."""
        with self._lock:
            if self.stopped:
                return None, "stopped"
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=fsutil.ROOT,
                                 env=env, start_new_session=True)
            self._procs.add(p)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            procutil.kill_group(p.pid)
            p.communicate()
            return None, f"timed out after {timeout:.0f}s"
        finally:
            with self._lock:
                self._procs.discard(p)
        return (None, "stopped") if self.stopped else (p.returncode, out)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for p in self._procs:
                procutil.kill_group(p.pid)


def ensure(rung: Rung, cache: Path = CACHE, rebuild: bool = False, log=print, builds: Builds | None = None) -> Env:
    """The rung's environment: a shared venv that has it, the cached one, or one built now."""
    shared = _shared(rung)
    if shared is not None:
        return Env(rung, str(shared / "bin" / "python"), fingerprint=_fingerprint(shared, rung))
    dest = Path(cache) / rung.env_name
    built_s = 0.0
    if _ready(dest, rung) is None:
        failed = _failed(cache, rung)
        if failed and not rebuild:
            return Env(rung, error=failed)
        built_s = _build(rung, Path(cache), log, builds or Builds())
    saved = _ready(dest, rung)
    if saved is None:
        return Env(rung, error=_failed(cache, rung) or f"{rung.id}: no environment was made")
    return Env(rung, str(dest / "bin" / "python"), fingerprint=_fingerprint(dest, rung), built_s=built_s,
               bytes=int(saved.get("bytes", 0)))


def _failed_file(cache: Path, rung: Rung) -> Path:
    return Path(cache) / f"{rung.env_name}.failed.json"


def _failed(cache: Path, rung: Rung) -> str:
    """The stored error of a build of this recipe that failed less than FAILED_KEEP_S ago, else ""."""
    try:
        saved = json.loads(_failed_file(cache, rung).read_text())
    except (OSError, ValueError):
        return ""
    if saved.get("stamp") != _stamp(rung) or time.time() - saved.get("when", 0) > FAILED_KEEP_S:
        return ""
    return saved.get("error", "")


@contextlib.contextmanager
def _lock(cache: Path, rung: Rung):
    """One builder per environment (a second one waits): a `.tmp-<name>.*` folder the holder sees is a
    dead builder's. Builders of different releases run side by side (pip waits on its indexes)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".lock-{rung.env_name}", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _build(rung: Rung, cache: Path, log, builds: Builds) -> float:
    """Build the rung's environment -> the seconds it took (0 when another builder made it meanwhile)."""
    with _lock(cache, rung):
        dest = cache / rung.env_name
        if _ready(dest, rung) is not None:     # another builder made it while this one waited
            return 0.0
        for stale in cache.glob(f"{fsutil.TMP_PREFIX}{rung.env_name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        log(f"[compat] building the {rung.label} environment ({' '.join(rung.requirements())}) in {dest}")
        t0 = time.perf_counter()
        box = Path(tempfile.mkdtemp(prefix=f"{fsutil.TMP_PREFIX}{rung.env_name}.", dir=cache))
        try:
            venv = box / "env"
            error = _make(rung, venv, _check_model(rung.format, box), builds)
            if error and builds.stopped:      # interrupted: not a finding about the release
                return 0.0
            if error:
                fsutil.write_json_atomic(_failed_file(cache, rung),
                                         {"stamp": _stamp(rung), "when": time.time(), "error": error})
                log(f"[compat] {rung.id}: no environment: {error}")
                return 0.0
            built_s = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
            (venv / STAMP).write_text(json.dumps({**_stamp(rung), "built_s": round(built_s, 1), "bytes": size,
                                                  "installed": installed(venv)}))
            if dest.exists():
                os.replace(dest, box / "old")
            os.replace(venv, dest)    # a venv finds its prefix from its pyvenv.cfg: it may move
            _failed_file(cache, rung).unlink(missing_ok=True)
            log(f"[compat] {rung.id}: environment built in {built_s:.0f}s, {size / 2**20:.0f} MiB")
            return built_s
        finally:
            shutil.rmtree(box, ignore_errors=True)


def _check_model(fmt: str, folder: Path) -> Path:
    """A one-operator model every release of the format reads: the bench's trivial .tflite (ADD v1,
    min_runtime_version 1.5.0); for ONNX an Add at IR version 7, opset 11 (the bench's trivial.onnx is
    IR 10, which ONNX Runtime reads only from 1.16 on), made here with the onnx package."""
    if fmt != "onnx":
        return fsutil.ROOT / "pipeline" / "bench" / "data" / f"trivial.{fmt}"
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "check",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)
    onnx.save(model, folder / "check.onnx")
    return folder / "check.onnx"


def _make(rung: Rung, venv: Path, check_model: Path, builds: Builds) -> str:
    """Create the venv, install the rung, check its adapter runs the one-op model -> "" or the error."""
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        ("venv", [base, "-m", "venv", "--without-pip", str(venv)], 120.0),
        ("pip", [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                 "--disable-pip-version-check", "--no-input", "-q", "--only-binary", ":all:",
                 *(["--no-deps"] if rung.no_deps else []), *rung.requirements()], PIP_TIMEOUT_S),
        ("check", [str(venv / "bin" / "python"), "-m", "pipeline.compat.worker", "--check", rung.adapter,
                   str(check_model)], CHECK_TIMEOUT_S),
    ]
    env = {**os.environ, "PYTHONPATH": str(fsutil.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for what, cmd, timeout in steps:
        rc, out = builds.run(cmd, timeout, env)
        if rc is None:
            return f"{rung.id}: {what} {out}"
        if rc != 0:
            return f"{rung.id}: {what} failed: {_cause(out)}"
    return ""


def _cause(text: str) -> str:
    """pip's first ERROR line, else the output's last line (a traceback's exception)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return ((errors or lines or ["no output"])[0 if errors else -1])[:300]
