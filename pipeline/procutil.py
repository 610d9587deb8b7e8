"""Child-process hygiene: workers die with the harness, and an interrupted harness kills its workers.

    env = {**os.environ, **procutil.child_env()}; subprocess.Popen(cmd, env=env, start_new_session=True)
    procutil.die_with_parent()        # first thing in the child's main()

Workers run in their own session (so a worker's crash or a timeout kill reaches only its own process
group), which also means a Ctrl-C in the terminal does not reach them and a SIGKILLed harness would
leave them running as orphans. `die_with_parent` asks Linux to SIGKILL the child when the harness
dies, for any reason (PR_SET_PDEATHSIG); on other systems it does nothing. The child calls it itself
(a preexec_fn is unsafe with the export stage's threads) and then checks that its parent is still the
harness that started it, closing the race where the harness died before the call.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


_ENV = "MOBILEBENCH_PARENT_PID"


def child_env() -> dict[str, str]:
    return {_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """In a worker started with child_env(): get SIGKILLed when the harness dies."""
    parent = os.environ.pop(_ENV, "")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):
        os._exit(1)  # the harness is already gone


def kill_group(pid: int) -> None:
    """SIGKILL a worker's process group (it was started with start_new_session=True)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
