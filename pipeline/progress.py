"""Count and time left on a long stage's progress lines, inside the bracket the tools parse:

    [bench 12/289, ~3m10s left] digits_cnn/keras__tflite_fp32 litert big-core: p50 0.023 ms
    [export digits_cnn 1/3, 4/30 in all, ~1m20s left] keras__tflite_fp32: ok in 2.0s
    [quant-debug 5/14, ~2m05s left] executorch int8_per_tensor: {...}

    progress.left(i, total, elapsed_s)        # ", ~3m10s left" (nothing after the last step)
    p = progress.Progress(total); say(p.tag(line))   # one more step done: its count and time left in `line`

The estimate is the mean time per finished step so far times the steps left: cached steps make it low
at first, and it settles as real work is timed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


def duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def left(done: int, total: int, elapsed_s: float) -> str:
    """', ~3m10s left' after `done` of `total` steps took `elapsed_s`; '' before the first or after the last."""
    if done < 1 or done >= total:
        return ""
    return f", ~{duration(elapsed_s / done * (total - done))} left"


@dataclass
class Progress:
    """A stage's steps reported by workers' lines (export: models x paths, in parallel threads)."""
    total: int
    count: bool = True            # False when the line carries this same count already
    in_all: bool = True           # ", 4/30 in all" after the line's own count; False: the only count, " 4/30"
    start: float = field(default_factory=time.monotonic)
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _restarted: bool = field(default=False, repr=False)

    def tag(self, line: str) -> str:
        """`line` ('[export m 1/3] ...') with one more step counted: '[export m 1/3, 4/30 in all, ~1m left] ...'."""
        with self._lock:
            self.done += 1
            done = self.done
        head, sep, rest = line.partition("] ")
        if not sep or not head.startswith("["):
            return line
        count = "" if not self.count else f", {done}/{self.total} in all" if self.in_all else f" {done}/{self.total}"
        return f"{head}{count}{left(done, self.total, time.monotonic() - self.start)}] {rest}"

    def restart_clock(self) -> None:
        """Time the estimate from the first call, if no step is done yet: the steps' real work starts
        there (the export stage trains every model first, uncounted; timed from the stage's start, the
        first paths looked minutes long each and the first estimate said hours)."""
        with self._lock:
            if self.done == 0 and not self._restarted:
                self.start, self._restarted = time.monotonic(), True

    def expect(self, total: int) -> None:
        """The step count once it is known better (a stage that learns its later steps as it goes)."""
        with self._lock:
            self.total = max(total, self.done)

    def say(self, log):
        """`log`, with every line counted as one step done (lines not in brackets pass unchanged)."""
        return lambda line: log(self.tag(line))
