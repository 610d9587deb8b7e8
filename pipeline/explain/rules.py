"""Why a mismatch happens, from its evidence: the one set of rules, as data (a name and a function each),
tried in order; the first that fits names the cause, "unexplained" when none does.

    from pipeline.explain import rules
    e = rules.explain(r.info.get("evidence"), r.info.get("file"), r.quantization)
    e.rule, e.cause       # "saturated_infinity", "the converter lowered `IsInf` to `|x| == FLT_MAX` ..."
    e.explained           # False for "unexplained"

A rule reads only the stored evidence (`pipeline/explain/evidence.py`: which values differ, the inputs
and outputs there) and the file's facts (`pipeline/explain/filefacts.py`: operators, small constants and
who uses them); every word of its text that is about the case comes from those (operator and constant
names, counts, values). Nothing here is written for one operator or one model. Adding a rule = one
function and one line in RULES.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from pipeline.explain.evidence import FP16_MAX, fmt
from pipeline.parity import PROBE_GOOD

UNEXPLAINED = "unexplained"
INF_TAGS = ("inf", "posinf", "neginf")
NONFINITE_TAGS = INF_TAGS + ("nan", "nonfinite", "nonfinite_units")
SATURATED = {"flt_max": "FLT_MAX", "fp16_max": "float16's maximum"}
# comparison operators of every format's reader, as the texts write them
COMPARE_SYMBOL = {"EQUAL": "==", "NOT_EQUAL": "!=", "GREATER": ">", "GREATER_EQUAL": ">=", "LESS": "<",
                  "LESS_EQUAL": "<=", "Equal": "==", "Greater": ">", "GreaterOrEqual": ">=", "Less": "<",
                  "LessOrEqual": "<=", "aten::eq": "==", "aten::ne": "!=", "aten::gt": ">", "aten::ge": ">=",
                  "aten::lt": "<", "aten::le": "<="}
QUANTIZED = ("int8", "dynamic_int8", "fp16")
# names converters give any constant: they say nothing about what the constant stood for
GENERIC_NAMES = ("const", "constant", "scalar", "value", "val", "tensor", "weight", "bias")


@dataclass(frozen=True)
class Case:
    """What a rule reads: the evidence of the first differing output, the file's facts and the
    artifact's quantization."""
    evidence: dict
    file: dict
    quantization: str = ""

    @property
    def inputs_tag(self) -> str:
        return self.evidence.get("inputs", {}).get("tag", "none")

    @property
    def out_tags(self) -> list[str]:
        return self.evidence.get("outputs", {}).get("tags", [])

    @property
    def where(self) -> str:
        return self.evidence.get("where", {}).get("kind", "")

    def ops(self, limit: int = 8) -> str:
        """The file's distinct operators, in order of first use (for a text)."""
        names = list(dict.fromkeys(_short(o) for o in self.file.get("operators", [])))
        for d in self.file.get("delegates", []):
            names += [n for n in dict.fromkeys(d.get("nodes", [])) if n not in names]
        return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "") if names else "its operators"


@dataclass(frozen=True)
class Explanation:
    rule: str        # the rule's name, or UNEXPLAINED
    cause: str       # one line: the cause, then (after ": ") the evidence it rests on

    @property
    def explained(self) -> bool:
        return self.rule != UNEXPLAINED

    @property
    def short(self) -> str:
        """The cause without its evidence (a grid cell, a terminal line)."""
        return self.cause.split(": ", 1)[0]


def _short(op: str) -> str:
    """`aten::isinf.out` -> `aten::isinf`; other formats' names as they are."""
    return re.sub(r"\.(out|default|Tensor_out|Scalar_out|\w+_out)$", "", op)


def _is_abs(op: str) -> bool:
    return _short(op).lower().replace("aten::", "").replace("xnn", "") == "abs"


def _stem(name: str) -> str:
    """A constant's name without its scope and numbering (`functional_1_1/IsInf` -> `IsInf`)."""
    tail = re.split(r"[/;:]", name.rstrip(";/"))[-1]
    return re.sub(r"\d+$", "", tail)


def _saturated(c: Case) -> list[dict]:
    return [k for k in c.file.get("constants", []) if set(k.get("flags", [])) & set(SATURATED)]


def _differing(c: Case) -> str:
    ev = c.evidence
    return f"all {ev.get('differ')} differing values" if ev.get("differ", 0) > 1 else "the differing value"


# ---------------------------------------------------------------- the rules

def delegate(c: Case) -> str | None:
    """Run again with the runtime's default delegate off, the file matches: the delegate's kernels
    compute it differently, not the converter's file."""
    off = c.evidence.get("without_delegate") or {}
    if off.get("cell") not in PROBE_GOOD:
        return None
    return (f"the runtime's default delegate computes it differently: with the delegate off, the same file "
            f"matches the reference ({c.evidence.get('where', {}).get('text', '')} with it on)")


def saturated_infinity(c: Case) -> str | None:
    """The outputs differ exactly at ±inf inputs, and the file compares with FLT_MAX (or float16's
    maximum) where the model compares with infinity: the converter saturated an infinity constant."""
    if c.inputs_tag not in INF_TAGS:
        return None
    for k in _saturated(c):
        use = next((u for u in k.get("used_by", []) if _short(u["op"]) in COMPARE_SYMBOL), None)
        if use is None:
            continue
        symbol = COMPARE_SYMBOL[_short(use["op"])]
        lhs = "|x|" if any(_is_abs(w) for w in use.get("with", [])) else "x"
        limit = "FLT_MAX" if "flt_max" in k["flags"] else fmt(FP16_MAX)
        stem = _stem(k["name"])
        what = f"`{stem}`" if len(stem) > 2 and stem.isidentifier() and stem.lower() not in GENERIC_NAMES \
            else "an infinity test"
        consequence = "so no infinity is ever detected" if symbol == "==" else "so ±inf inputs compare as finite ones"
        how = (f"compared by {use['op']}" + (f" with the output of {', '.join(use['with'])}" if use.get("with") else "")
               + (f", after {use['via']}" if use.get("via") else ""))
        n = c.file.get("n_constants", 0)
        holds = "one small constant" if n == 1 else f"{n} small constants, among them"
        value = next(SATURATED[f] for f in k["flags"] if f in SATURATED)
        out = c.evidence.get("outputs", {}).get("text", "").split(";")[0]
        return (f"the converter lowered {what} to `{lhs} {symbol} {limit}`, {consequence}: the differing values "
                f"are {c.evidence['inputs']['text'].split(';')[0].removeprefix('all ')}"
                + (f" ({out})" if out else "") + f", and the file ({c.ops()}) holds {holds} `{k['name']}` = "
                f"{fmt(k['values'][0])} ({value}), {how}")
    return None


def saturated_constant(c: Case) -> str | None:
    """±inf inputs differ and the file holds a saturated infinity, used elsewhere than a comparison."""
    if c.inputs_tag not in INF_TAGS or not _saturated(c):
        return None
    k = _saturated(c)[0]
    users = ", ".join(u["op"] for u in k.get("used_by", [])) or "no operator we can see"
    return (f"the file holds `{k['name']}` = {fmt(k['values'][0])} (used by {users}) where the model "
            f"presumably holds ±inf: {_differing(c)} are at ±inf inputs")


def nonfinite_inputs(c: Case) -> str | None:
    """Only the non-finite inputs differ, with no saturated constant in the file: its kernels handle
    NaN or infinity differently from the framework's."""
    if c.inputs_tag not in NONFINITE_TAGS:
        return None
    what = {"nan": "NaN", "nonfinite": "NaN and ±inf", "nonfinite_units": "non-finite"}.get(c.inputs_tag, "±inf")
    where = "samples holding " if c.inputs_tag == "nonfinite_units" else ""
    return (f"the file's kernels ({c.ops()}) treat {what} inputs differently from the framework: "
            f"{_differing(c)} are at {where}{what} inputs, every finite one matches")


def fp16_range(c: Case) -> str | None:
    """A float16 file whose differing values lie beyond float16's range."""
    o = c.evidence.get("outputs", {})
    big = o.get("expected_absmax")
    if c.quantization != "fp16" or not isinstance(big, (int, float)) or big <= FP16_MAX:
        return None
    return (f"values beyond float16's range (±{fmt(FP16_MAX)}): the reference reaches {fmt(big)} where the fp16 file "
            f"{'gives a non-finite value' if 'got_nonfinite' in c.out_tags else 'saturates'}")


def nonfinite_output(c: Case) -> str | None:
    """The file produces ±inf/NaN where the reference is finite (an overflow or 0/0 inside it)."""
    if "got_nonfinite" not in c.out_tags:
        return None
    return (f"the file's arithmetic leaves the finite range where the reference's does not (an overflow "
            f"or 0/0 inside {c.ops()}): {c.evidence['outputs']['text'].split(';')[0]}")


def _beyond(spread: dict, rng: list) -> bool:
    """More than one value in a hundred lies outside the range (the 1st or 99th percentile does)."""
    lo, hi = rng
    return bool(spread) and (spread["p01"] < lo or spread["p99"] > hi)


def _span(lo, hi) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _ranged_inputs(c: Case, per_input: list):
    """(index, input, its quantized range, `per_input`'s entry) of each input the file quantizes."""
    for k, (io, value) in enumerate(zip(c.file.get("inputs", []), per_input)):
        if io.get("quantized_range"):
            yield k, io, io["quantized_range"], value


def input_range(c: Case) -> str | None:
    """An integer input range (fixed by the calibration set) that the inputs overflow: clipped before
    any operator runs."""
    for _, io, rng, spread in _ranged_inputs(c, c.evidence.get("input_ranges", [])):
        if _beyond(spread, rng):
            return (f"the inputs overflow the file's quantized input range: `{io['name']}` carries "
                    f"{_span(*rng)} (fixed by the calibration data), the inputs span "
                    f"{_span(spread['min'], spread['max'])} (1st-99th percentile "
                    f"{_span(spread['p01'], spread['p99'])}), so they are clipped before any operator runs")
    return None


def quantized_to_zero(c: Case) -> str | None:
    """An integer file whose differing values are all at inputs within half a quantization step of zero:
    they quantize to 0, so a comparison or a sign test there (where, relu, sign) decides the other way."""
    for k, io, rng, peak in _ranged_inputs(c, c.evidence.get("inputs", {}).get("absmax_at") or []):
        step = (rng[1] - rng[0]) / 255
        if isinstance(peak, (int, float)) and peak < step / 2:
            return (f"the differing values are at inputs that quantize to zero: input {k} is within "
                    f"{fmt(peak)} of 0 there, under half the file's int8 step {fmt(step)} (`{io['name']}` carries "
                    f"{_span(*rng)}), so a comparison with 0 or a sign test in {c.ops()} "
                    f"decides the other way ({c.evidence.get('outputs', {}).get('text', '')})")
    return None


def output_range(c: Case) -> str | None:
    """An integer output range (fixed by calibration) that the reference's outputs overflow."""
    spread = c.evidence.get("expected_range") or {}
    k = c.evidence.get("output", 0)
    outs = c.file.get("outputs", [])
    rng = outs[k].get("quantized_range") if k < len(outs) else None
    if not rng or not _beyond(spread, rng):
        return None
    return (f"the reference's outputs overflow the file's quantized output range: `{outs[k]['name']}` carries "
            f"{_span(*rng)} (fixed by the calibration data), the reference spans "
            f"{_span(spread['min'], spread['max'])}")


def clipped(c: Case) -> str | None:
    """The differing outputs sit at the file's own output extremes while the reference goes beyond."""
    if "clipped" not in c.out_tags:
        return None
    why = ("the int8 output range, fixed by the calibration set, does not cover them"
           if "int8" in c.quantization else "a range fixed in the file (a fused clamp) cuts them")
    return f"the output saturates: {why} ({c.evidence['outputs']['text'].split(';')[-1].strip()})"


def permuted(c: Case) -> str | None:
    """The right values in another order: a layout or axis mix-up."""
    if "permuted" not in c.out_tags:
        return None
    return (f"the file computes the reference's values in another order: a layout or axis mix-up "
            f"({c.ops()}; {c.evidence['where']['text']})")


def input_extremes(c: Case) -> str | None:
    """Only the largest (or smallest) |x| differ: a range limit or an approximation of a kernel."""
    tag = c.inputs_tag
    if tag not in ("largest", "smallest", "zero", "denormal"):
        return None
    text = c.evidence["inputs"]["text"].split(";")[0]
    why = {"largest": "a range limit or an approximation that holds for small inputs only",
           "smallest": "the file's precision near zero (a relative error the reference does not make)",
           "zero": "signed zero, 0/0 or a log/rsqrt of 0 handled differently",
           "denormal": "denormals flushed to zero"}[tag]
    return f"{why}, in {c.ops()}: {text}"


def position_pattern(c: Case) -> str | None:
    """Only the borders of an axis, or one index of it, differ: boundary handling or one channel."""
    w = c.evidence.get("where", {})
    if w.get("kind") == "edges":
        return (f"the borders differ: boundary handling (padding, window or interpolation edges) in {c.ops()}: "
                f"{w['text']}")
    if w.get("kind") == "one_index":
        return f"one index of axis {w['axis']} differs (a per-channel value or an off-by-one in {c.ops()}): {w['text']}"
    return None


def size(c: Case) -> str | None:
    w = c.evidence.get("where", {})
    return f"the outputs differ in size: {w['text']}" if w.get("kind") == "size" else None


def spread_rounding(c: Case) -> str | None:
    """A quantized file whose error has no value or position pattern: its precision, not one value class."""
    if c.quantization not in QUANTIZED or c.inputs_tag != "none" or c.where not in ("everywhere", "scattered"):
        return None
    if set(c.out_tags) & {"got_nonfinite", "expected_nonfinite", "clipped", "permuted", "constant"}:
        return None
    return (f"no value or position pattern: the error is spread over the outputs as {c.quantization} rounding "
            f"is ({c.evidence['where']['text']}), so the bound is tighter than this file's precision")


Rule = tuple[str, Callable[[Case], "str | None"]]
RULES: tuple[Rule, ...] = (
    ("size", size),
    ("delegate", delegate),
    ("saturated_infinity", saturated_infinity),
    ("saturated_constant", saturated_constant),
    ("nonfinite_inputs", nonfinite_inputs),
    ("fp16_range", fp16_range),
    ("nonfinite_output", nonfinite_output),
    ("input_range", input_range),
    ("quantized_to_zero", quantized_to_zero),
    ("output_range", output_range),
    ("clipped", clipped),
    ("permuted", permuted),
    ("input_extremes", input_extremes),
    ("position_pattern", position_pattern),
    ("spread_rounding", spread_rounding),
)


def explain(evidence: dict | None, file: dict | None = None, quantization: str = "") -> Explanation:
    """The first rule that fits the stored evidence (a record's info["evidence"]) and the file's facts
    (its info["file"]); UNEXPLAINED, with what the evidence does show, when none does."""
    ev = evidence or {}
    if not ev:
        return Explanation(UNEXPLAINED, "unexplained: no evidence was recorded for this mismatch")
    case = Case(ev, file or {}, quantization)
    for name, rule in RULES:
        text = rule(case)
        if text:
            return Explanation(name, text)
    shown = "; ".join(t for t in (ev.get("where", {}).get("text"), ev.get("inputs", {}).get("text"),
                                  ev.get("outputs", {}).get("text")) if t)
    return Explanation(UNEXPLAINED, f"unexplained: {shown}" if shown else "unexplained")
