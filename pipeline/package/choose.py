"""Which artifact ships, per platform, and why (with the numbers).

    choice = choose.pick(candidates, "android", prefer="balanced", profile="big-core")

A candidate is eligible on a platform when its format is one the platform's app can load (PLATFORMS)
and its parity status in that format's runtime is `ok`. Rules (`--prefer`):
  balanced (default)  the smallest whose p50 is within SPEED_SLACK of the fastest eligible p50
  size                the smallest;  speed  the fastest p50;  accuracy  the highest SQNR vs the source
                      (eval accuracy first when --eval was given)

Platform's own framework first (NATIVE_FIRST): on iOS a verified Core AI `.aimodel` (parity `ok` in Core
AI's own runtime) is chosen before any LiteRT/ExecuTorch file, and `--prefer` chooses among the `.aimodel`
files alone. The timings here are host CPU timings: Core AI's Linux CPU runtime and LiteRT on this x86
host, not an iPhone, where Core AI specializes the model for the Neural Engine/GPU/CPU and LiteRT runs on
the CPU. Across those two runtimes a host ratio says nothing about the phone, so the rule never compares
them; within one runtime it is the only timing there is. Only when no `.aimodel` is verified does the
choice fall to LiteRT/ExecuTorch, and the reason says why (each `.aimodel`'s status).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.parity import ELSEWHERE, PACKAGE_SPEED_SLACK as SPEED_SLACK
from pipeline.schema import Record

# platform -> {format: the runtime the app embeds for it}: what can be verified here and chosen
PLATFORMS: dict[str, dict[str, str]] = {
    "android": {"tflite": "litert", "pte": "executorch"},
    "ios": {"aimodel": "coreai", "tflite": "litert", "pte": "executorch"},
}
# the platform's own framework, chosen first when one of its files is verified (see the rule above)
NATIVE_FIRST: dict[str, tuple[str, ...]] = {"ios": ("aimodel",)}
# offered beside the choice, not verified here: Core ML (.mlpackage; .pte with the Core ML delegate)
UNVERIFIED_FORMATS: dict[str, tuple[str, ...]] = {"ios": ("mlpackage", "pte")}
PREFER = ("balanced", "size", "speed", "accuracy")


@dataclass(frozen=True)
class Check:
    """One artifact's parity in one runtime: what the verify worker saw (package/verify.py), judged by
    pipeline.parity (`status`, `error`, the `figures` judged), and for a mismatch what the file computes and
    the likely cause (pipeline/explain)."""
    status: str                     # a parity.STATUSES entry: ok, mismatch, failed, skipped, or a runs-elsewhere one
    error: str = ""
    metrics: dict = field(default_factory=dict)
    version: str = ""               # the runtime's
    describe: dict = field(default_factory=dict)     # the artifact's inputs/outputs as the runtime reads them
    evidence: dict | None = None
    file: dict | None = None
    cause: str = ""
    figures: str = ""


@dataclass(frozen=True)
class Candidate:
    export: Record                                   # the export record (status ok/failed/unsupported)
    artifact: Path | None = None
    checks: dict[str, Check] = field(default_factory=dict)  # runtime -> its parity
    bench: tuple[Record, ...] = ()                   # bench records of every runtime x profile, with their verdicts

    @property
    def name(self) -> str:
        return self.export.path

    @property
    def size(self) -> float:
        return float(self.export.metrics.get("size_bytes", 0))

    def status(self, runtime: str) -> str:
        """Its parity status in `runtime` ("" when it was not checked there)."""
        return self.checks[runtime].status if runtime in self.checks else ""

    def p50(self, runtime: str, profile: str) -> float | None:
        for r in self.bench:
            if r.runtime == runtime and r.profile == profile and r.status == "ok":
                return r.metrics.get("latency_p50_ms")
        return None

    def speed(self, runtime: str, profile: str) -> str:
        """The timing the choice compares, as its reason says it."""
        return f"p50 {self.p50(runtime, profile):.3f} ms on {runtime} {profile}"


@dataclass(frozen=True)
class Choice:
    platform: str
    candidate: Candidate | None
    runtime: str
    reason: str


def _describe(c: Candidate, rt: str, profile: str) -> str:
    m = c.checks[rt].metrics if rt in c.checks else {}
    sq = m.get("sqnr_db")
    return (f"{c.name} ({c.export.quantization}, {c.size / 1024:.1f} KiB, {c.speed(rt, profile)}"
            + (f", SQNR {sq:.1f} dB" if sq is not None else "") + ")")


def unverified(cands: list[Candidate], platform: str) -> list[Candidate]:
    """Artifacts exported for this platform that only its devices run (a "runs elsewhere" status of that
    platform, e.g. `apple_only`, in every runtime here): the smallest per format, fp16/w8 alike (the app
    developer verifies them on a device)."""
    away = {e.status for e in ELSEWHERE if platform in e.platforms}
    out = []
    for fmt in UNVERIFIED_FORMATS.get(platform, ()):
        apple = [c for c in cands if c.artifact is not None and c.export.format == fmt and c.checks
                 and all(ch.status in away for ch in c.checks.values())]
        if apple:
            out.append(min(apple, key=lambda c: c.size))
    return out


def balanced(items: list, size, cost) -> tuple:
    """The default rule over any cost (host p50 here; the report also ranks on the emulated ARM core):
    the smallest item whose cost is within SPEED_SLACK of the lowest, ties to the cheaper. Returns
    (chosen, the items within the slack)."""
    low = min(cost(x) for x in items)
    near = [x for x in items if cost(x) <= low * (1 + SPEED_SLACK)]
    return min(near, key=lambda x: (size(x), cost(x))), near


def pick(cands: list[Candidate], platform: str, prefer: str = "balanced", profile: str = "big-core") -> Choice:
    if prefer not in PREFER:
        raise ValueError(f"--prefer {prefer!r}: expected one of {', '.join(PREFER)}")
    formats = PLATFORMS[platform]
    ok = [(c, formats[c.export.format]) for c in cands if c.export.format in formats
          and c.status(formats[c.export.format]) == "ok"
          and c.p50(formats[c.export.format], profile) is not None]
    if not ok:
        seen = [f"{c.name}: {c.status(formats[c.export.format]) or c.export.status}"
                for c in cands if c.export.format in formats]
        return Choice(platform, None, "", f"no {'/'.join(formats)} artifact is `ok` with a timing on "
                                          f"{profile} ({'; '.join(seen) or 'none exported'})")
    ok, tier = _native_first(cands, ok, platform)
    fastest = min(ok, key=lambda cr: cr[0].p50(cr[1], profile))
    if prefer == "balanced":
        (c, rt), near = balanced(ok, lambda cr: cr[0].size, lambda cr: cr[0].p50(cr[1], profile))
        why = (f"the smallest of the {len(near)} `ok` artifact(s) whose p50 is within {SPEED_SLACK:.0%} of the "
               f"fastest, {_describe(*fastest, profile)}")
    elif prefer == "size":
        c, rt = min(ok, key=lambda cr: (cr[0].size, cr[0].p50(cr[1], profile)))
        why = f"the smallest of {len(ok)} `ok` artifact(s) (--prefer size)"
    elif prefer == "speed":
        c, rt = fastest
        why = f"the fastest p50 of {len(ok)} `ok` artifact(s) (--prefer speed)"
    else:
        def score(cr):
            m = cr[0].checks[cr[1]].metrics
            return (m.get("accuracy", 0.0), m.get("sqnr_db", 0.0), -cr[0].p50(cr[1], profile))
        c, rt = max(ok, key=score)
        why = f"the highest accuracy/SQNR vs the source among {len(ok)} `ok` artifact(s) (--prefer accuracy)"
    others = [_describe(o, ort, profile) for o, ort in ok if o is not c]
    return Choice(platform, c, rt, f"{_describe(c, rt, profile)}: {why}"
                  + (f". Other candidates: {'; '.join(others)}" if others else "") + tier)


def _native_first(cands: list[Candidate], ok: list, platform: str) -> tuple[list, str]:
    """The eligible (candidate, runtime) pairs the rule chooses among, and the sentence that says why:
    the platform's own format alone when one of its files is `ok` (host timings are never compared across
    runtimes), else every eligible pair with each native file's status."""
    native = NATIVE_FIRST.get(platform, ())
    if not native:
        return ok, ""
    mine = [cr for cr in ok if cr[0].export.format in native]
    fmts = "/".join(f".{f}" for f in native)
    if mine:
        rest = len(ok) - len(mine)
        return mine, (f". {fmts} first: the platform's own framework, verified here by its own runtime"
                      + (f"; {rest} verified LiteRT/ExecuTorch file(s) not compared, as host timings of "
                         "different runtimes say nothing about the phone" if rest else ""))
    seen = []
    for c in cands:
        if c.export.format in native:
            ch = c.checks.get(PLATFORMS[platform][c.export.format])
            why = (ch.error if ch else "") or c.export.error
            seen.append(f"{c.name}: {ch.status if ch else c.export.status}" + (f" ({why})" if why else ""))
    return ok, (f". No {fmts} is verified here, so the choice falls to LiteRT/ExecuTorch ("
                + ("; ".join(seen) if seen else f"no {fmts} was exported") + ")")
