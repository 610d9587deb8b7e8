"""The OS sandbox for worker processes that load or run a user's model: bubblewrap (`bwrap`).

    job = workers.Job("pipeline.package.verify", items, sandbox=sandbox.Sandbox(reads=(src,), writes=(work,)))
    cmd = sandbox.Sandbox(reads=..., writes=...).wrap(cmd, scratch, python)    # a Popen of its own

Inside: no network (a new network namespace: loopback only), a new PID, IPC and UTS namespace, its own
session (no terminal to inject keys into), killed with the harness (--die-with-parent). Reads: the system
libraries (/usr, /lib*, a few /etc files), /sys, the Python installation and venv of the worker, the
project's code (its data folders artifacts/, results/, .cache/, dist/ hidden), and the `reads` of the
job (the user's source, the inputs). Writes: the job's `writes` (its work folder) and the worker's own
scratch folder (job file, progress file, TMPDIR, HOME). Everything else, $HOME's secrets included, does
not exist inside. The environment is cut to what the runtimes need (no tokens), and
TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 makes every torch.load inside safe (torch's own weights_only=False calls too).

Why bubblewrap and not Landlock alone: Landlock (ABI 7 on these machines) limits file access and TCP
but not other sockets, and would need our own ctypes code; bwrap is a maintained tool that gives mount,
network and PID namespaces in one call. Where bwrap is missing or cannot make namespaces, sandboxed jobs
are refused (`Unavailable`: one line, exit 2) unless the user opts out with `--no-sandbox`
(MOBILEBENCH_SANDBOX=off), which the manifest records.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_SWITCH = "MOBILEBENCH_SANDBOX"      # "off": run unsandboxed (the user's explicit choice)
SYSTEM_RO = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
ETC_RO = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/nsswitch.conf",
          "/etc/passwd", "/etc/group", "/etc/localtime", "/etc/os-release", "/etc/hosts")
HIDDEN_DATA = ("artifacts", "results", ".cache", "dist")       # the project's data, not its code
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHASHSEED",
            "PYTHONDONTWRITEBYTECODE", "CUDA_VISIBLE_DEVICES")
ENV_KEEP_PREFIX = ("MOBILEBENCH_", "TF_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "XNNPACK_", "TORCH_", "PYTORCH_",
                   "ORT_", "EXECUTORCH_", "GLOG_", "ABSL_")
ENV_DROP = ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "MOBILEBENCH_PARENT_PID")   # bwrap's --die-with-parent instead


class Unavailable(ValueError):
    """No working bubblewrap here: one line, exit 2 (the user may opt out with --no-sandbox)."""


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "on").lower() not in ("off", "0", "no", "false")


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[str, str]:
    """(bwrap version, "") when bwrap works here, else ("", why not)."""
    exe = shutil.which("bwrap")
    if not exe:
        return "", "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        p = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True, timeout=30)
        v = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "", f"bwrap cannot run: {e}"
    if p.returncode != 0:
        return "", f"bwrap cannot create namespaces here ({(p.stderr.strip().splitlines() or ['?'])[0]})"
    return v, ""


def status() -> dict:
    """What the manifest records: the tool and its limits, or why the workers ran without one."""
    if not enabled():
        return {"sandbox": "off", "why": f"opted out ({ENV_SWITCH}=off / --no-sandbox): the user's model ran "
                "with this user's rights, network and files"}
    version, why = _probe()
    if why:
        return {"sandbox": "unavailable", "why": why}
    return {"sandbox": version, "network": "none", "writes": "the work folder only",
            "reads": "system libraries, the venv, the project's code, the model and its inputs"}


def require() -> None:
    """Raise Unavailable (one line) when sandboxed jobs cannot run here and the user did not opt out."""
    if not enabled():
        return
    _, why = _probe()
    if why:
        raise Unavailable(f"the OS sandbox for workers that open your model cannot run: {why}; "
                          "install it, or pass --no-sandbox to run without one (recorded in the manifest)")


def _venv_paths(python: str) -> list[str]:
    """The worker's interpreter: its venv (symlinks resolved) and the base installation it points at."""
    out = {sys.base_prefix, sys.prefix, str(Path(sys.prefix).resolve())}
    venv = Path(python).parent.parent
    out |= {str(venv), str(venv.resolve())}
    cfg = venv.resolve() / "pyvenv.cfg"
    if cfg.is_file():
        for line in cfg.read_text().splitlines():
            k, _, v = line.partition("=")
            if k.strip() == "home" and v.strip():
                out.add(str(Path(v.strip()).resolve().parent))
    return sorted(p for p in out if p and Path(p).exists())


@dataclass(frozen=True)
class Sandbox:
    reads: tuple[str, ...] = ()     # read-only: the user's source, the inputs
    writes: tuple[str, ...] = ()    # read-write: the work folder (made if missing)

    def __post_init__(self):
        object.__setattr__(self, "reads", tuple(str(Path(p).resolve()) for p in self.reads))
        object.__setattr__(self, "writes", tuple(str(Path(p).resolve()) for p in self.writes))

    def wrap(self, cmd: list[str], scratch: Path, python: str = sys.executable) -> list[str]:
        """`cmd` run inside bwrap, or unchanged when the user opted out (`require()` was called before)."""
        if not enabled():
            return cmd
        from pipeline import fsutil
        exe = shutil.which("bwrap") or "bwrap"
        args = [exe, "--unshare-all", "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
                "--tmpfs", "/tmp"]
        for p in SYSTEM_RO + ETC_RO:
            if os.path.islink(p) and not p.startswith("/etc"):
                args += ["--symlink", os.readlink(p), p]      # merged /usr: /bin -> usr/bin
            elif os.path.exists(p):
                args += ["--ro-bind", p, p]
        root = str(fsutil.ROOT)
        for p in _venv_paths(python) + [root]:
            args += ["--ro-bind", p, p]
        for d in HIDDEN_DATA:
            if (fsutil.ROOT / d).is_dir():
                args += ["--tmpfs", f"{root}/{d}"]
        for p in self.reads:
            if os.path.exists(p):
                args += ["--ro-bind", p, p]
        for p in self.writes + (str(Path(scratch).resolve()),):
            Path(p).mkdir(parents=True, exist_ok=True)
            args += ["--bind", p, p]
        # the sandbox's own root (a tmpfs bwrap builds the mounts on) read-only too: writes go nowhere else
        return args + ["--remount-ro", "/", "--chdir", root, "--"] + list(cmd)

    def exit_code(self, rc: int) -> int:
        """bwrap reports a child killed by signal N as 128 + N: back to Popen's -N (SIGSEGV is SIGSEGV)."""
        return -(rc - 128) if enabled() and 128 < rc < 128 + 65 else rc

    def env(self, env: dict[str, str], scratch: Path) -> dict[str, str]:
        """The worker's environment cut to what runtimes need; HOME and TMPDIR in its scratch folder."""
        if not enabled():
            return env
        keep = {k: v for k, v in env.items()
                if (k in ENV_KEEP or k.startswith(ENV_KEEP_PREFIX)) and k not in ENV_DROP}
        home, tmp = Path(scratch).resolve() / "home", Path(scratch).resolve() / "tmp"
        home.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        return {**keep, "HOME": str(home), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(home / ".cache"),
                "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1", "MOBILEBENCH_SANDBOXED": "1"}
