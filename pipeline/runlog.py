"""The run's log file: the libraries' own output goes to `results/logs/<stage>-<UTC time>.log`, and the
terminal keeps our progress lines.

    with runlog.session(results, "export", verbose=False) as say:   # the CLI, around one stage
        say("[export ...] ...")                  # ours: the terminal
        # torch/TF/ExecuTorch writing to fd 1 or 2, natively or from Python: the log
    follow = runlog.Follower(out_file, tag); follow()      # a child's output file, copied as it grows

Inside a session this process's fd 1 and fd 2 point at the log, so the libraries it imports (quant-debug
and train run them in-process) and any child started with inherited output write there natively; our
lines go to a duplicate of the terminal's fd 1 taken first. A worker (`pipeline/workers.py`) writes its
output to a file the parent follows, and that is copied to the log, or with -v to the terminal (`ENV` tells
which; outside a session, in tools and tests, it is not copied). Several processes append to one file
(O_APPEND), each child's lines tagged with who wrote them. A step that failed (`failed_line`) gets the
log named once, at the end.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

KEEP = 10                   # logs kept per stage: older ones are removed when a run starts
# set by a session, inherited by its workers: the log's path, or "-" when the terminal takes the output (-v)
ENV = "MOBILEBENCH_RUN_LOG"
# our lines that report a failed step (the export worker's "<stem>: failed in", the bench's and
# quant-debug's "...: failed: ...", a worker's death, the CLI's own "error: ..."): the log may say why
_FAILED = re.compile(r": failed\b|\bworker (exited|killed)\b|^error: ")


def failed_line(line: str) -> bool:
    return bool(_FAILED.search(line))


def logs_dir(results: Path) -> Path:
    return Path(results) / "logs"


def new_log(results: Path, stage: str, keep: int = KEEP) -> Path:
    """A new, empty `<results>/logs/<stage>-<UTC time>.log`; the stage's oldest logs beyond `keep` removed."""
    d = logs_dir(results)
    d.mkdir(parents=True, exist_ok=True)
    old = sorted(d.glob(f"{stage}-*.log"), key=lambda f: _started(f, stage))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # another run in this second (package takes no results lock): the next number, never a pruned one's
    n = max([k for s, k in (_started(f, stage) for f in old) if s == stamp], default=0) + 1
    while True:
        path = d / f"{stage}-{stamp}{'' if n == 1 else f'-{n}'}.log"
        try:
            path.open("x").close()
            break
        except FileExistsError:
            n += 1
    for f in old[:max(0, len(old) - keep + 1)]:
        f.unlink(missing_ok=True)
    return path


def _started(log: Path, stage: str) -> tuple[str, int]:
    """A log's order: its UTC stamp, then its number within that second ('<stage>-<stamp>-2.log')."""
    stamp, _, n = log.stem[len(stage) + 1:].partition("-")
    return stamp, int(n) if n.isdigit() else 1


def shown(path: Path) -> str:
    """The path as a user types it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class Terminal:
    """Our lines' writer; remembers whether one reported a failure (the log is then named at the end)."""
    stream: object
    failed: bool = False

    def __call__(self, msg: str) -> None:
        self.failed = self.failed or any(failed_line(ln) for ln in str(msg).splitlines())
        self.stream.write(f"{msg}\n")
        self.stream.flush()


@contextlib.contextmanager
def session(results: Path, stage: str, verbose: bool = False) -> Iterator[Terminal]:
    """Route this process's fd 1 and 2 to a new log for the stage; yields the writer of our lines.
    `verbose`: no log, everything on the terminal as without this module."""
    opened = None if verbose else _open_log(results, stage)
    if opened is None:
        with _env("-"):
            yield Terminal(sys.stdout)
        return
    path, log_fd = opened
    sys.stdout.flush()
    sys.stderr.flush()
    # our writer: a stdout that is fd 1 (the CLI) is duplicated before fd 1 moves; one that is not
    # (pytest's capsys in in-process tests) is not moved and is written as it is
    on_fd1 = _fileno(sys.stdout) == 1
    term = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace") if on_fd1 else sys.stdout
    saved = os.dup(1), os.dup(2)
    out = Terminal(term)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        with _env(str(path)):
            yield out
    except (KeyboardInterrupt, KeyError, ValueError):
        raise       # a Ctrl-C or the user's own error: the CLI's one line (exit 130 or 2) says it all
    except BaseException:
        out.failed = True
        raise
    finally:
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        with contextlib.suppress(OSError):
            if out.failed and path.stat().st_size > len(_header(stage)):
                out(f"see {shown(path)}")
        if on_fd1:
            term.close()


@contextlib.contextmanager
def _env(where: str) -> Iterator[None]:
    old = os.environ.get(ENV)
    os.environ[ENV] = where
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def _open_log(results: Path, stage: str) -> tuple[Path, int] | None:
    """(path, fd) of a new log with its header; None when the results folder takes no file (full or
    read-only): the run goes on with the libraries' output on the terminal, and fails, if it must,
    where it writes its own results."""
    try:
        path = new_log(results, stage)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return None
    try:
        os.write(fd, _header(stage))
    except OSError:
        os.close(fd)
        return None
    return path, fd


def _header(stage: str) -> bytes:
    return f"# {stage}: the libraries' own output; a worker's lines start with its name and '| '\n".encode()


def _fileno(stream) -> int:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


def to_stderr(lines: Iterable[str], tag: str) -> None:
    """Library output of a child, tagged, into the session's log (this process's fd 2), or the terminal
    with -v; outside a session (tools, tests) nowhere, as before the run log existed."""
    where = os.environ.get(ENV)
    text = "".join(f"{tag}| {ln.rstrip()}\n" for ln in lines)
    if not where or not text:
        return
    with contextlib.suppress(OSError):          # a full disk loses log lines, not the run
        if where == "-":
            sys.stderr.write(text)
            sys.stderr.flush()
        else:
            os.write(2, text.encode(errors="replace"))


@dataclass
class Follower:
    """Copies what a child appends to its output file (stdout+stderr) into stderr as it comes, whole lines
    only (several children append to one log: a half line would interleave). Call it while waiting, and
    once with `final=True` after the child ended (its last line may lack a newline)."""
    path: Path
    tag: str
    offset: int = field(default=0)

    def __call__(self, final: bool = False) -> None:
        if not os.environ.get(ENV):
            return              # no session: nothing to copy to (see to_stderr)
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        if not final:
            chunk = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(chunk)
        to_stderr(chunk.decode(errors="replace").splitlines(), self.tag)
