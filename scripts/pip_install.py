"""`pip install` into a venv, done by uv (pinned) with this machine's pip configuration; pip if uv fails.

    python3 scripts/pip_install.py .venv/bin/python -r requirements.txt
    python3 scripts/pip_install.py .venv/bin/python --no-deps -r requirements-nodeps.txt

Why: pip took ~3.5 of the cold `make bench-mobile`'s 15 minutes to install the pinned stack (torch,
TensorFlow, ExecuTorch, Core AI: ~2 GB of wheels, unpacked one by one); uv installs the same pins from
the same places in ~65 s, .pyc files included (2 cores). uv does not read pip's configuration, so the
settings that say where wheels come from (index-url, extra-index-url, find-links, constraint,
no-index, cert, timeout; from pip.conf files and PIP_* variables alike, as `pip config list` shows
them) are passed on to it, and it picks the best version across every index as pip does
(`--index-strategy unsafe-best-match`). Any failure of uv (not installable here, a resolution it
refuses) falls back to pip with the same arguments, so set-up never depends on uv. Standard library
only: it runs before the venv has anything.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

UV = "uv==0.13.8"
PIP_QUIET = ["--disable-pip-version-check", "-q"]
# pip's setting -> uv's flag (one flag per value)
FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}


def pip_config(py: str) -> dict[str, list[str]]:
    """pip's effective settings, each as its list of values (`key='v1 v2'` lines of `pip config list`)."""
    out = subprocess.run([py, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    cfg: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, sep, val = line.partition("=")
        if not sep:
            continue
        vals = cfg.setdefault(key.rsplit(".", 1)[-1], [])
        vals += [v for v in val.strip().strip("'\"").split() if v not in vals]
    return cfg


def uv_command(uv: str, py: str, args: list[str], cfg: dict[str, list[str]]) -> tuple[list[str], dict]:
    """The uv command line and environment that install `args` as pip would with `cfg`."""
    # --compile-bytecode: pip writes .pyc files at install, uv only when asked; with PYTHONDONTWRITEBYTECODE
    # set (as on these machines) a venv without them recompiles torch and TensorFlow in every process
    # (~20 s each: every export and bench worker)
    cmd = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", py, "--index-strategy",
           "unsafe-best-match"]
    for setting, flag in FLAGS.items():
        for v in cfg.get(setting, []):
            cmd += [flag, v]
    if cfg.get("no-index", ["0"])[-1].lower() in ("1", "true", "yes", "on"):
        cmd.append("--no-index")
    env = dict(os.environ)
    if cfg.get("cert"):
        env.setdefault("SSL_CERT_FILE", cfg["cert"][-1])
    if cfg.get("default-timeout"):
        env.setdefault("UV_HTTP_TIMEOUT", cfg["default-timeout"][-1])
    return cmd + args, env


def install(py: str, args: list[str]) -> int:
    uv = str(Path(py).parent / "uv")
    if subprocess.run([py, "-m", "pip", "install", *PIP_QUIET, UV], capture_output=True).returncode == 0:
        cmd, env = uv_command(uv, py, args, pip_config(py))
        res = subprocess.run(cmd, env=env)
        if res.returncode == 0:
            return 0
        print(f"[setup] uv could not install {' '.join(args)} (exit {res.returncode}): installing with pip",
              file=sys.stderr)
    else:
        print(f"[setup] {UV} does not install here: installing with pip", file=sys.stderr)
    return subprocess.run([py, "-m", "pip", "install", *PIP_QUIET, *args]).returncode


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: pip_install.py VENV_PYTHON PIP_INSTALL_ARGS...")
    sys.exit(install(sys.argv[1], sys.argv[2:]))
