"""The one rule that names why a record is not ok: every report section groups and labels errors with it.

    from pipeline.report.causes import cause, clean
    c = cause(r)      # Cause(key="optimize_for_mobile: no XNNPACK in this torch build", text="...")
    c.short           # the name a grid cell carries

A cause is the error text with what is specific to one artifact taken out (the machine's paths, the
artifact's file and model names, numbers), so the same failure on six models is one cause with six
models. Known causes get a readable short name from `KNOWN` (a pattern in the error text -> the name);
any other cause is named by its first clause. Paths in the shown text are relative to the project (the
results may come from another machine or worktree).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.compat import lacks
from pipeline.schema import Record

# pattern in the (cleaned) error text -> short name. One entry per known cause; the first match wins.
KNOWN: tuple[tuple[str, str], ...] = (
    (r"XNNPACK is not enabled", "optimize_for_mobile: this torch build has no XNNPACK"),
    (r"guest runtime (\w+) not installed on the emulated", r"\1 not installed on the emulated device (opt-in)"),
    (r"max abs diff [\d.]+ quantization steps > 1", "outside one quantization step"),
    (r"max abs diff \S+ > [\d.e-]+ x output scale", "outside the fp32 tolerance"),
    (r"top-1 agreement [\d.]+ != 1", "top-1 differs from the host"),
    # the device's own skip line starts so (a runtime's "is not on the emulated ARM64 device: ..." is another cause)
    (r"^emulated ARM64 device: ", "emulated ARM64 device unavailable"),
    (r"runtime (\w+) is not installed", r"runtime \1 not installed"),
)
SHORT_MAX = 60


@dataclass(frozen=True)
class Cause:
    key: str      # what groups records: the short name (KNOWN) or the generalised error text
    short: str    # the name grid cells and findings carry
    text: str     # the error as the record has it, paths relative to the project


def clean(text: str) -> str:
    """The error with absolute paths made relative to the project: the part from a known top-level
    folder on (artifacts/, results/, .cache/, device_tests/), else the file's name."""
    def rel(m: re.Match) -> str:
        p = m.group(0)
        for top in ("artifacts/", "results/", ".cache/", "device_tests/", "baselines/"):
            i = p.find("/" + top)
            if i >= 0:
                return p[i + 1:]
        return p.rsplit("/", 1)[-1] if re.match(r"^/(tmp|home|work|root|Users|var)/", p) else p
    return re.sub(r"(?<![\w.])/[\w.+-]+(?:/[\w.+@-]+)+", rel, text)


def _generalise(text: str, r: Record) -> str:
    """Take out what differs between artifacts hit by the same failure."""
    t = re.sub(r"\S*(?:artifacts|results|\.cache)/\S+", "<file>", text)
    for name, tag in sorted({(r.model, "<model>"), (r.path, "<path>"), (r.source, "<twin>")} - {("", "<model>"),
                            ("", "<path>"), ("", "<twin>")}, key=lambda x: -len(x[0])):
        t = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", tag, t)
    return re.sub(r"(?<![\w.])\d+(\.\d+)?(e-?\d+)?(?![\w])", "<n>", t)


def cause(r: Record) -> Cause:
    text = clean(r.error or r.status)
    lack = lacks.parse(text)    # what a runtime says it lacks: one reading of its error (pipeline/compat/lacks.py)
    if lack:
        short = f"runtime too old: no {lacks.describe(lack)}"
        return Cause(short, short, text)
    for pattern, name in KNOWN:
        m = re.search(pattern, text)
        if m:
            short = m.expand(name)
            return Cause(short, short, text)
    key = _generalise(text, r)
    first = re.split(r"(?<=\D)[.;](?:\s|$)", key, maxsplit=1)[0]
    short = first if len(first) <= SHORT_MAX else first[:SHORT_MAX - 1].rstrip() + "…"
    return Cause(key, short, text)
