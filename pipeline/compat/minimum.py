"""The measured minimum runtime of one artifact, from its `compat` records, beside what the file declares.

    m = minimum.of(compat_records_of_one_artifact)
    m.matches_from      # the lowest release from which every measured release loads it and matches
    m.lowest            # the lowest release that loads it and matches (below `matches_from`: a gap)
    m.gaps              # releases above `lowest` that do not match (fail or mismatch)
    m.false_claim       # releases the file's declared minimum covers that cannot run it
    minimum.sentence(m) # "loads and matches on LiteRT >= 1.2.0 (measured on 10 releases)"

The one reading of the ladder: the report, the findings and the package's manifest all call this.
"Matches" is the record's status ok (parity policy, pipeline/parity.py); "measured" leaves out the
releases with no environment here (status skipped).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline import parity
from pipeline.compat import lacks as lacks_mod
from pipeline.compat import ladder
from pipeline.schema import Record

# every LiteRT release (the first, ai-edge-litert 1.0.0, in September 2024) postdates TensorFlow 2.16
# (March 2024): a .tflite declaring a TensorFlow version up to this one claims every LiteRT release
LITERT_AFTER_TF = "2.16"


@dataclass(frozen=True)
class Minimum:
    format: str
    measured: tuple[Record, ...]            # in ladder order, skipped ones left out
    not_measured: tuple[Record, ...] = ()   # releases with no environment here
    lowest: Record | None = None
    matches_from: Record | None = None
    loads_from: Record | None = None        # the same for "loads" (ok or mismatch)
    gaps: tuple[Record, ...] = ()
    blocker: Record | None = None           # the failing release right below `matches_from`
    declared: str = ""                      # a .tflite's min_runtime_version
    false_claim: tuple[Record, ...] = field(default=())
    older_than_declared: tuple[Record, ...] = ()   # TensorFlow releases below the declared one that pass

    @property
    def unmeasured_below(self) -> list[str]:
        """Releases of the full ladder between `blocker` and `matches_from` that were not measured: the
        true minimum may be one of them (`--ladder full` measures them)."""
        if self.blocker is None or self.matches_from is None:
            return []
        lo, hi = position(self.blocker), position(self.matches_from)
        seen = {r.runtime for r in self.measured}
        return [g.id for g in ladder.LADDERS.get(self.format, ())[lo + 1:hi] if g.id not in seen]

    @property
    def lack(self) -> str:
        """What the release right below `matches_from` lacks ("FULLY_CONNECTED v12"), or ""."""
        return lacks_mod.describe(self.blocker.info.get("lacks") or {}) if self.blocker is not None else ""


def _version(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def tf_version(r: Record) -> str:
    """The TensorFlow release a record's runtime is (tflite-runtime and tensorflow-cpu carry TensorFlow's
    version), or "" for a LiteRT release."""
    rel = r.info.get("release", {})
    return rel.get("version", "") if rel.get("dist") in ("tflite-runtime", "tensorflow-cpu") else ""


def claimed(declared: str, r: Record) -> bool:
    """Does a declared TensorFlow minimum version cover this release?"""
    if not declared:
        return False
    tf = tf_version(r)
    if tf:
        return _version(tf) >= _version(declared)
    return _version(declared) <= _version(LITERT_AFTER_TF)


def position(r: Record) -> int:
    """Where a record's release stands in the ladder as the table is now (the stored position for a
    release no longer in it)."""
    try:
        return ladder.position(ladder.by_id(r.runtime))
    except KeyError:
        return int(r.info.get("release", {}).get("position", -1))


def _from(measured: list[Record], good) -> Record | None:
    """The lowest record from which every higher one is good."""
    start = None
    for r in reversed(measured):
        if not good(r):
            break
        start = r
    return start


def of(recs: list[Record]) -> Minimum:
    """The summary of one artifact's compat records (one format)."""
    recs = sorted(recs, key=position)
    fmt = recs[0].format if recs else ""
    measured = [r for r in recs if r.status != "skipped"]
    declared = next((r.info.get("declared", {}).get("min_runtime_version", "") for r in recs), "")
    ok = [r for r in measured if r.status == "ok"]
    lowest = ok[0] if ok else None
    matches_from = _from(measured, lambda r: r.status == "ok")
    below = [r for r in measured if matches_from is not None and position(r) < position(matches_from)]
    gaps = [r for r in measured if lowest is not None and r.status != "ok" and position(r) > position(lowest)]
    return Minimum(fmt, tuple(measured), tuple(r for r in recs if r.status == "skipped"), lowest, matches_from,
                   _from(measured, lambda r: parity.ran(r.status)), tuple(gaps),
                   below[-1] if below else (measured[-1] if measured and matches_from is None else None),
                   declared, tuple(r for r in measured if r.status == "failed" and claimed(declared, r)),
                   tuple(r for r in ok if declared and tf_version(r) and not claimed(declared, r)))


def label(r: Record | None) -> str:
    return r.info.get("release", {}).get("label", r.runtime) if r is not None else ""


def sentence(m: Minimum) -> str:
    """What an app developer reads: "loads and matches on LiteRT >= 1.2.0 (measured on 10 releases; not
    on LiteRT 1.1.2: FULLY_CONNECTED v12)"."""
    n = f"measured on {len(m.measured)} release{'s' if len(m.measured) != 1 else ''}"
    if not m.measured:
        return f"not measured on any release ({len(m.not_measured)} without an environment here)"
    if m.matches_from is None:
        top = m.measured[-1]
        loads = f"; loads on {m.loads_from.info['release']['product']} >= {m.loads_from.info['release']['version']}" \
            if m.loads_from is not None else ""
        return f"matches on no release from the newest down ({label(top)}: {top.status}{loads}; {n})"
    rel = m.matches_from.info["release"]
    text = f"loads and matches on {rel['product']} >= {rel['version']}"
    if m.matches_from is m.measured[0]:
        text += ", the oldest release measured"
    text += f" ({n}"
    if m.blocker is not None:
        text += f"; not on {label(m.blocker)}: {m.lack or m.blocker.status}"
        between = m.unmeasured_below
        if between:
            text += f"; {len(between)} release{'s' if len(between) != 1 else ''} between not measured"
    if m.lowest is not None and m.lowest is not m.matches_from:
        text += f"; also on {label(m.lowest)}, below that gap"
    return text + ")"


def needs(m: Minimum) -> str:
    """The release an app needs at least: "LiteRT >= 1.2.0"; "TFLite >= 2.14.0 (the oldest measured)"
    when every release measured passes (older ones were not measured); "none" when even the newest
    does not match."""
    r = m.matches_from
    if r is None:
        return "none"
    rel = r.info["release"]
    return f"{rel['product']} >= {rel['version']}" + (" (the oldest measured)" if r is m.measured[0] else "")


def by_artifact(recs: list[Record]) -> dict[tuple[str, str, str], Minimum]:
    """(model, source, path) -> Minimum, over every compat record given."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in recs:
        if r.kind == "compat":
            groups.setdefault((r.model, r.source, r.path), []).append(r)
    return {k: of(v) for k, v in groups.items()}

