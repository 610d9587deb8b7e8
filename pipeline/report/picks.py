"""The answer per model: which file ships on Android and which on iOS, with the figures it was chosen on.

    from pipeline.report.picks import pick
    p = pick(view, "digits_cnn", "android")   # Pick(record=<bench record>, cost=65384.0, on_arm=True, ...)
    p.cost_text()                             # "65.4k ARM64 instr" or "0.021 ms host p50"

The package's rule (`pipeline/package/choose.py`), applied to the bench records: eligible are the files the
platform's app loads (`choose.PLATFORMS`), measured `ok` in that format's runtime on the model's first
profile and within the model's quality allowance of its best float reference (`ship.within_reference`).
The platform's own framework first (`choose.NATIVE_FIRST`: a verified Core AI `.aimodel` on iOS), then
`choose.balanced`: the smallest file whose cost is within the package's slack of the cheapest. The cost is
the net instructions per inference on the emulated ARM64 judge core (`view.ARM_JUDGE_CORE`) among the files
that ran there with parity; when none of them did (Core AI has no ARM64 Linux runtime here; `--no-device`),
the host p50, compared only within one runtime family as the package does.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.package.choose import NATIVE_FIRST, PLATFORMS, balanced
from pipeline.report.ship import best_reference, within_reference
from pipeline.report.view import ARM_JUDGE_CORE, View, generative
from pipeline.schema import Record

PLATFORM_NAME = {"android": "Android", "ios": "iOS"}
TOKEN_METRIC = "instructions_per_decoded_token"     # a generative artifact's ARM64 cost (generative/device.py)
NATIVE_NAME = {"aimodel": "Core AI"}


@dataclass(frozen=True)
class Pick:
    platform: str
    record: Record | None     # the chosen file's bench record (its runtime, the model's first profile)
    cost: float | None        # what it was ranked on: ARM64 net instructions, or host p50 ms
    on_arm: bool              # cost is the emulated ARM64 count (else the host p50)
    tier: str                 # "Core AI" when the platform's own framework was chosen, else ""
    candidates: int           # how many eligible files the rule chose among
    why: str                  # why there is no pick ("" when there is one)
    per_token: bool = False   # a generative model: the cost is per decoded token

    def cost_text(self) -> str:
        if self.cost is None:
            return "–"
        if self.per_token:
            return f"{short_count(self.cost)} ARM64 instr/token" if self.on_arm else f"{self.cost:.3g} ms/token host"
        if self.on_arm:
            return f"{short_count(self.cost)} ARM64 instr"
        return f"{self.cost:.3g} ms host p50"


def short_count(n: float) -> str:
    """65384 -> "65.4k", 1234567 -> "1.23M": an instruction count at a glance."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"


def candidates(view: View, model: str, platform: str) -> tuple[list[Record], list[Record]]:
    """(native, other) eligible bench records on the model's first profile: files the platform's app loads,
    `ok` in their format's runtime, within the model's quality reference."""
    prof = view.first_profile(model)
    timed = view.timed(model, prof)
    formats = PLATFORMS[platform]
    ref = best_reference(view, timed)
    good = [r for r in timed if formats.get(r.format) == r.runtime and "size_bytes" in r.metrics
            and within_reference(view, r, ref)]
    native = [r for r in good if r.format in NATIVE_FIRST.get(platform, ())]
    return native, [r for r in good if r not in native]


def arm_per_token(view: View, r: Record, core: str) -> float | None:
    """Guest instructions per decoded token of a generative artifact on `core`, when it ran there."""
    d = view.on_device(r, core)
    return d.metrics.get(TOKEN_METRIC) if d is not None and d.status == "ok" else None


def _generative(view: View, model: str, platform: str) -> Pick | None:
    """A generative model (pipeline/report/generative.py): the same rule on its generation records, `ok`
    meaning within the generative bounds (perplexity included); cost = ARM64 instructions per decoded token
    where the files ran there, else the host time per decoded token (the LM package's speed)."""
    gen = [r for r in view.kind("bench") if r.model == model and generative(r)]
    if not gen:
        return None
    prof = sorted({r.profile for r in gen}, key=view._profile_key)[0]
    good = [r for r in gen if r.profile == prof and r.status == "ok" and "size_bytes" in r.metrics
            and PLATFORMS[platform].get(r.format) == r.runtime]
    native = [r for r in good if r.format in NATIVE_FIRST.get(platform, ())]
    group = native or good
    if not group:
        names = "/".join(f".{f}" for f in PLATFORMS[platform])
        return Pick(platform, None, None, False, "", 0, f"no {names} file passed the generative parity on `{prof}`",
                    per_token=True)

    def arm(r):
        return arm_per_token(view, r, ARM_JUDGE_CORE)
    on_arm = [r for r in group if arm(r) is not None]
    cost = arm if on_arm else (lambda r: r.metrics["decode_ms_per_token"])
    chosen, _ = balanced(on_arm or group, lambda r: r.metrics["size_bytes"], cost)
    tier = NATIVE_NAME.get(chosen.format, "") if native else ""
    return Pick(platform, chosen, cost(chosen), bool(on_arm), tier, len(on_arm or group), "", per_token=True)


def pick(view: View, model: str, platform: str) -> Pick:
    gen = _generative(view, model, platform)
    if gen is not None:
        return gen
    native, other = candidates(view, model, platform)
    group = native or other
    tier = NATIVE_NAME.get(native[0].format, native[0].format) if native else ""
    if not group:
        names = "/".join(f".{f}" for f in PLATFORMS[platform])
        return Pick(platform, None, None, False, "", 0,
                    f"no {names} file ran ok within the quality reference on `{view.first_profile(model) or '–'}`")
    on_arm = [r for r in group if view.arm_cost(r, ARM_JUDGE_CORE) is not None]
    if on_arm:
        cost = lambda r: view.arm_cost(r, ARM_JUDGE_CORE)  # noqa: E731
        group = on_arm
    else:
        cost = lambda r: r.metrics["latency_p50_ms"]  # noqa: E731
    chosen, _ = balanced(group, lambda r: r.metrics["size_bytes"], cost)
    return Pick(platform, chosen, cost(chosen), bool(on_arm), tier, len(group), "")


def picks(view: View, model: str) -> list[Pick]:
    """One pick per platform, in `choose.PLATFORMS` order."""
    return [pick(view, model, p) for p in PLATFORMS]


def rule_text() -> str:
    """The rule in one sentence, from the values it applies."""
    from pipeline.parity import PACKAGE_SPEED_SLACK
    return (f"the package's rule: among the files the platform's app loads that ran `ok` within the model's "
            f"quality allowance, the platform's own framework first (Core AI on iOS), then the smallest whose "
            f"cost is within {PACKAGE_SPEED_SLACK:.0%} of the cheapest; cost = net instructions per inference on "
            f"the emulated ARM64 `{ARM_JUDGE_CORE}` core where the files ran there, else the host p50")
