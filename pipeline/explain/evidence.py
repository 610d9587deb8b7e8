"""Where an artifact's outputs differ from the reference, and what the inputs were there.

    from pipeline.explain import evidence
    ev = evidence.of(expected, got, inputs=[x], bound=0.0)      # exact check (masks, indices)
    ev = evidence.of(expected, got, inputs=[x], bound=1.2e-4)   # |got - expected| > bound differs
    ev = evidence.of(expected, got, inputs=[x], bound="top1")   # a sample differs when its argmax does
    ev = evidence.of(expected, got, inputs=[x])                 # no per-value bound: the largest errors
    ev["differ"], ev["where"]["text"], ev["inputs"]["text"], ev["outputs"]["text"], ev["pairs"]

Computed once, where the outputs are compared (probes/harness.py, the bench's quality step, the emulated
device, the package's parity check), and stored in the record's `info["evidence"]`: a small
JSON dict (at most MAX_PAIRS pairs, a few short texts), never re-derived from logs. Tags (`inputs.tag`,
`outputs.tags`, `where.kind`) are what `pipeline/explain/rules.py` reads; the texts are what a reader reads.

Inputs map to outputs element by element only when an input has the output's shape (elementwise ops);
otherwise, when they share leading axes (the batch, rows), per unit of those axes ("per sample");
otherwise not at all ("no element-wise map": the inputs are summarised as a whole). numpy only.
"""
from __future__ import annotations

import numpy as np

from pipeline.parity import EVIDENCE     # when differing values make a pattern (min_pattern, rare/extreme share)

MAX_PAIRS = 5
FLT_MAX = float(np.finfo(np.float32).max)
FLT_TINY = float(np.finfo(np.float32).tiny)
FP16_MAX = float(np.finfo(np.float16).max)     # 65504


def num(v) -> float | str:
    """A JSON-safe number: integers as they are, finite floats to 8 significant digits, inf/NaN as strings."""
    if isinstance(v, (int, np.integer, np.bool_)):
        return int(v)
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(f"{v:.8g}")


def fmt(v) -> str:
    """A value as the texts show it (FLT_MAX named)."""
    if isinstance(v, str):
        return {"inf": "+inf", "-inf": "-inf", "nan": "NaN"}.get(v, v)
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+inf" if v > 0 else "-inf"
    return f"{v:.8g}" if abs(v) >= 1e38 else f"{v:.6g}"   # FLT_MAX shown whole: 3.4028235e+38


def of(expected, got, inputs=(), bound: float | str | None = None) -> dict:
    """The evidence of one output: what differs (by `bound`: 0 = exact, a number = an absolute bound
    per value, "top1" = per sample by argmax, None = the largest errors holding half the squared error),
    where, the inputs there, and the first pairs. Bounded: a few numbers and texts whatever the sizes."""
    r = np.asarray(expected)
    o = np.asarray(got)
    if o.size != r.size:
        return _sizes_differ(bound, f"the output has {o.size} values, the reference {r.size}")
    r = r.astype(np.float64)
    o = o.reshape(r.shape).astype(np.float64)
    xs = [np.asarray(x) for x in inputs]
    unit_mask, mask = _differing(r, o, bound)
    ev = {"rule": _rule_name(bound), "compared": int(r.size), "shape": list(r.shape)}
    if isinstance(bound, (int, float)) and bound:
        ev["bound"] = num(bound)
    elem = [k for k, x in enumerate(xs) if x.shape == r.shape and np.issubdtype(x.dtype, np.number)]
    lead = _shared_leading(xs, r.shape)
    if unit_mask is not None:                    # top-1: the unit is the sample
        lead = 1 if all(x.ndim and len(x) == len(r) for x in xs) and xs else 0
        elem = []
    ev["differ"] = int(unit_mask.sum() if unit_mask is not None else mask.sum())
    if unit_mask is not None:
        ev["unit"] = "sample"
        ev["compared_units"] = int(unit_mask.size)
    if elem:
        ev["map"] = "element"
        ev["where"] = _positions(mask)
        ev["inputs"] = _element_inputs([(k, xs[k]) for k in elem], mask)
    elif lead:
        units = unit_mask if unit_mask is not None else mask.reshape(*r.shape[:lead], -1).any(-1)
        ev["map"] = "unit"
        ev["unit_shape"] = list(r.shape[:lead])
        ev["where"] = _positions(units, unit="sample" if lead == 1 else "row")
        ev["inputs"] = _unit_inputs(xs, units, lead)
    else:
        ev["map"] = "none"
        ev["where"] = _positions(mask) if unit_mask is None else _positions(unit_mask, unit="sample")
        ev["inputs"] = _whole_inputs(xs, r.shape)
    if unit_mask is not None and mask is None:
        mask = np.zeros(r.shape, bool)
        mask[unit_mask] = True
    ev["outputs"] = _outputs(r, o, mask)
    ev["pairs"] = _pairs(r, o, mask, xs, elem, lead)
    # the values' spread, to hold against a file's quantized ranges (rules.input_range / output_range)
    ev["input_ranges"] = [_spread(x) for x in xs if np.issubdtype(x.dtype, np.number)]
    ev["expected_range"] = _spread(r)
    return ev


def _spread(x: np.ndarray) -> dict:
    """min, max and the 1st/99th percentiles of the finite values (one value in a hundred beyond p01/p99)."""
    f = x[np.isfinite(x)].astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
    if not f.size:
        return {}
    p01, p99 = np.percentile(f, [1, 99])
    return {"min": num(f.min()), "max": num(f.max()), "p01": num(p01), "p99": num(p99)}


def of_outputs(expected, got, inputs=()) -> dict:
    """Evidence that does not depend on a bound, for results judged later by bounds that may change
    without re-measuring (the bench's cached records, the package's parity cache): the samples whose
    top-1 flips when the output is a batch of logits and some do, else the largest errors."""
    r = np.asarray(expected)
    if r.ndim == 2 and r.shape[1] > 1 and len(r) > 1:
        ev = of(expected, got, inputs, "top1")
        if ev["differ"] > 0:
            return ev
    return of(expected, got, inputs, None)


def of_worst(outputs: list, references: list, inputs=()) -> dict:
    """`of_outputs` for the output (of several) whose error is largest against its own scale, tagged
    with its index: the one a parity verdict over the worst output was decided by."""
    if len(outputs) != len(references):
        return _sizes_differ(None, f"{len(outputs)} outputs, the reference has {len(references)}")

    def badness(k: int) -> float:
        o, r = np.asarray(outputs[k], np.float64), np.asarray(references[k], np.float64)
        if o.size != r.size:
            return np.inf
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.abs(o.reshape(-1) - r.reshape(-1))
        d = np.where(_same(r.reshape(-1), o.reshape(-1)), 0.0, np.where(np.isnan(d), np.inf, d))
        return float(d.max(initial=0)) / max(1.0, float(np.nanmax(np.abs(r), initial=0)))
    k = max(range(len(outputs)), key=badness) if outputs else 0
    return {"output": k, **of_outputs(references[k], outputs[k], inputs)} if outputs else {}


def _sizes_differ(bound, text: str) -> dict:
    """The evidence when values cannot be paired at all (rules.size reads `where.kind`)."""
    return {"rule": _rule_name(bound), "differ": -1, "map": "none", "pairs": [],
            "where": {"kind": "size", "text": text}, "inputs": {"tag": "none", "text": ""},
            "outputs": {"tags": [], "text": ""}}


def _rule_name(bound) -> str:
    if bound is None:
        return "largest errors (half the squared error)"
    if bound == "top1":
        return "top-1 differs"
    return "exact" if float(bound) == 0 else f"|got - expected| > {float(bound):.3g}"


def _same(r: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Equal values, NaN equal to NaN (the reference's NaN reproduced is not a difference)."""
    return (o == r) | (np.isnan(o) & np.isnan(r))


def _differing(r: np.ndarray, o: np.ndarray, bound) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(per-sample mask for "top1", else None; per-value mask, None for "top1")."""
    if bound == "top1":
        rr, oo = r.reshape(len(r), -1), o.reshape(len(o), -1)
        return rr.argmax(-1) != oo.argmax(-1), None
    same = _same(r, o)
    if bound is not None:
        with np.errstate(invalid="ignore"):
            return None, ~(same | (np.abs(o - r) <= float(bound)))
    # no per-value bound: the fewest largest errors holding half the squared error; a value that is
    # non-finite on one side only outweighs every finite error
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.where(same, 0.0, np.abs(o - r))
    d = np.where(np.isnan(d), np.inf, d)
    if np.isinf(d).any():
        return None, np.isinf(d)
    flat = d.reshape(-1) ** 2
    total = flat.sum()
    mask = np.zeros(flat.shape, bool)
    if total > 0:
        order = np.argsort(-flat, kind="stable")
        k = int(np.searchsorted(np.cumsum(flat[order]), total / 2)) + 1
        mask[order[:k]] = True
    return None, mask.reshape(r.shape)


def _shared_leading(xs: list[np.ndarray], shape: tuple) -> int:
    """How many leading axes every input shares with the output (a unit = one index of those), when
    that makes more than one unit."""
    if not xs:
        return 0
    n = 0
    while n < len(shape) and all(x.ndim > n and x.shape[n] == shape[n] for x in xs):
        n += 1
    while n and int(np.prod(shape[:n])) < 2:
        n -= 1
    # a unit must not be one value of the output: that would be an element map (handled above)
    return n if n < len(shape) else 0


def _positions(mask: np.ndarray, unit: str = "value") -> dict:
    """The differing positions' pattern: everywhere, one index of an axis, the edges of an axis, one
    contiguous run, or scattered."""
    n, k = int(mask.size), int(mask.sum())
    if k == 0:
        return {"kind": "none", "text": f"no {unit} differs by this rule"}
    if k == n:
        return {"kind": "everywhere", "text": f"every {unit} differs ({n})"}
    base = f"{k} of {n} {unit}s differ" if k > 1 else f"1 of {n} {unit}s differs"
    if k < EVIDENCE.min_pattern and mask.ndim > 1:
        at = "; ".join(str(tuple(int(i) for i in p)) for p in np.argwhere(mask))
        return {"kind": "few", "text": f"{base}: at {at}"}
    if mask.ndim == 1 and unit != "value":
        idx = np.flatnonzero(mask)
        shown = ", ".join(str(int(i)) for i in idx[:8]) + (", ..." if k > 8 else "")
        return {"kind": "scattered", "text": f"{base}: {unit} {shown}"}
    if k >= EVIDENCE.min_pattern:
        where = np.argwhere(mask)
        for a, size in enumerate(mask.shape):
            vals = np.unique(where[:, a])
            if size > 1 and len(vals) == 1:
                return {"kind": "one_index", "axis": a, "index": int(vals[0]),
                        "text": f"{base}, all at index {int(vals[0])} of axis {a} (size {size})"}
        for a, size in enumerate(mask.shape):
            vals = set(np.unique(where[:, a]).tolist())
            if size > 2 and vals <= {0, size - 1}:
                return {"kind": "edges", "axis": a,
                        "text": f"{base}, all at the first or last index of axis {a} (size {size})"}
        flat = np.flatnonzero(mask)
        if flat[-1] - flat[0] + 1 == k:
            return {"kind": "run", "text": f"{base}: one contiguous run, flat positions {flat[0]}..{flat[-1]}"}
    return {"kind": "scattered", "text": f"{base}, scattered (no position pattern)"}


_CLASSES = (  # value class -> (test, text); order = how they are named
    ("nan", np.isnan, "NaN"),
    ("posinf", np.isposinf, "+inf"),
    ("neginf", np.isneginf, "-inf"),
    ("zero", lambda x: x == 0, "zero"),
    ("denormal", lambda x: (x != 0) & (np.abs(x) < FLT_TINY), "denormal"),
)


def _classes(x: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore"):
        return {name: test(x) for name, test, _ in _CLASSES}


def _element_inputs(xs: list[tuple[int, np.ndarray]], mask: np.ndarray) -> dict:
    """The inputs at the differing positions (inputs of the output's shape): the first input whose
    values there form a pattern names it; each input's non-finite values are counted either way."""
    k = int(mask.sum())
    if k == 0:
        return {"tag": "none", "text": ""}
    found, notes = None, []
    for i, x in xs:
        x = x.astype(np.float64)
        name = "input" if len(xs) == 1 else f"input {i}"
        p = _value_pattern(x, mask, name)
        said = p.pop("notes")
        if found is None and p["tag"] != "none":
            found = {**p, "input": i}
            # the class the pattern names is said already ("exactly the 10 ±inf inputs")
            said = [t for t in said if not (p["tag"] in ("inf", "posinf", "neginf") and "±inf" in t
                                            or p["tag"] == "nan" and "NaN" in t)]
        notes += said
    out = found or {"tag": "none", "text": f"no input pattern at the {k} differing values"}
    if notes:
        out["text"] += "; " + "; ".join(notes)
    # the largest |x| of each input there (rules.quantized_to_zero holds it against an int8 step)
    out["absmax_at"] = [num(np.max(np.abs(x[mask & np.isfinite(x)]), initial=0)) for _, x in xs]
    return out


def _value_pattern(x: np.ndarray, mask: np.ndarray, name: str) -> dict:
    k, n = int(mask.sum()), int(x.size)
    cls = _classes(x)
    at = {c: int(m[mask].sum()) for c, m in cls.items()}
    total = {c: int(m.sum()) for c, m in cls.items()}
    inf_at, inf_total = at["posinf"] + at["neginf"], total["posinf"] + total["neginf"]
    # how each non-finite class fared, differing or not: "none of the 6 NaN inputs differs" is evidence too
    notes = [_fared(a, t, label, name) for a, t, label in ((at["nan"], total["nan"], "NaN"),
                                                           (inf_at, inf_total, "±inf")) if t]
    nonfinite_at = inf_at + at["nan"]
    share = lambda c: total[c] / n  # noqa: E731
    if inf_at == k and inf_total / n <= EVIDENCE.rare_share:
        sign = "+inf" if at["neginf"] == 0 else "-inf" if at["posinf"] == 0 else "±inf"
        tag = {"+inf": "posinf", "-inf": "neginf"}.get(sign, "inf")
        return {"tag": tag, "text": _all_at(k, inf_total, sign, name), "notes": notes}
    if at["nan"] == k and share("nan") <= EVIDENCE.rare_share:
        return {"tag": "nan", "text": _all_at(k, total["nan"], "NaN", name), "notes": notes}
    if nonfinite_at == k and (inf_total + total["nan"]) / n <= EVIDENCE.rare_share:
        return {"tag": "nonfinite", "text": f"all {k} at non-finite {name}s ({at['nan']} NaN, {inf_at} ±inf)",
                "notes": notes}
    for c in ("zero", "denormal"):
        if at[c] == k and share(c) <= EVIDENCE.rare_share:
            return {"tag": c, "text": f"all {k} at {c} {name}s", "notes": notes}
    finite = np.isfinite(x)
    if nonfinite_at == 0 and k >= EVIDENCE.min_pattern and finite.sum() > k:
        a = np.abs(x[finite])
        ad = np.abs(x[mask])
        if k <= EVIDENCE.extreme_share * a.size:
            hi = np.quantile(a, 1 - 2 * k / a.size)
            lo = np.quantile(a, 2 * k / a.size)
            if ad.min() >= hi and ad.min() > 0:
                return {"tag": "largest", "text": f"all {k} at the largest |{name}| (|x| >= {ad.min():.4g}; "
                        f"max |x| {a.max():.4g})", "notes": notes}
            if ad.max() <= lo:
                return {"tag": "smallest", "text": f"all {k} at the smallest |{name}| (|x| <= {ad.max():.4g})",
                        "notes": notes}
        neg = x[finite] < 0
        if (x[mask] < 0).all() and neg.mean() < 1 - EVIDENCE.extreme_share:
            return {"tag": "negative", "text": f"all {k} at negative {name}s ({neg.mean():.0%} of them are)",
                    "notes": notes}
        if (x[mask] > 0).all() and (~neg).mean() < 1 - EVIDENCE.extreme_share:
            return {"tag": "positive", "text": f"all {k} at positive {name}s ({(~neg).mean():.0%} of them are)",
                    "notes": notes}
    return {"tag": "none", "text": "", "notes": notes}


def _all_at(k: int, total: int, label: str, name: str) -> str:
    """"exactly the 10 ±inf inputs" when the class and the differing values coincide."""
    return f"exactly the {k} {label} {name}s" if k == total else f"all {k} at {label} {name}s (of {total})"


def _fared(at: int, total: int, label: str, name: str) -> str:
    if at == 0:
        return f"none of the {total} {label} {name}s differs"
    return f"all {total} {label} {name}s differ" if at == total else f"{at} of the {total} {label} {name}s differ"


def _unit_inputs(xs: list[np.ndarray], units: np.ndarray, lead: int) -> dict:
    """Per unit (sample, row) of the shared leading axes: are the differing units the ones holding
    non-finite inputs, or the ones with the largest |x|?"""
    k = int(units.sum())
    if k == 0:
        return {"tag": "none", "text": ""}
    flat_units = units.reshape(-1)
    has_nonfinite = np.zeros(flat_units.shape, bool)
    peak = np.zeros(flat_units.shape)
    for x in xs:
        if not np.issubdtype(x.dtype, np.floating):
            continue
        per = x.astype(np.float64).reshape(flat_units.size, -1)
        has_nonfinite |= ~np.isfinite(per).all(-1)
        with np.errstate(invalid="ignore"):
            peak = np.maximum(peak, np.nanmax(np.where(np.isfinite(per), np.abs(per), 0), axis=-1, initial=0))
    unit = "sample" if lead == 1 else "row"
    nf_at, nf_total = int(has_nonfinite[flat_units].sum()), int(has_nonfinite.sum())
    note = f"{nf_total} {unit}s hold non-finite inputs, {nf_at} of them differ" if nf_total else ""
    base = {"tag": "none", "text": f"no element-wise map (per {unit}); no input pattern at the {k} differing "
            f"{unit}s" + (f"; {note}" if note else "")}
    if nf_at == k and nf_total / flat_units.size <= EVIDENCE.rare_share:
        return {"tag": "nonfinite_units", "text": f"no element-wise map (per {unit}); all {k} differing {unit}s "
                f"are those holding non-finite inputs ({note})"}
    if k >= EVIDENCE.min_pattern and k <= EVIDENCE.extreme_share * flat_units.size:
        if peak[flat_units].min() >= np.quantile(peak, 1 - 2 * k / flat_units.size):
            return {"tag": "largest", "text": f"no element-wise map (per {unit}); all {k} differing {unit}s have "
                    f"the largest input |x| (>= {peak[flat_units].min():.4g})"}
    return base


def _whole_inputs(xs: list[np.ndarray], shape: tuple) -> dict:
    """No map from inputs to outputs: the inputs' value classes as a whole."""
    shapes = ", ".join(str(tuple(x.shape)) for x in xs)
    text = f"no element-wise map (inputs {shapes}, output {tuple(shape)})"
    parts = []
    for x in xs:
        if not np.issubdtype(x.dtype, np.floating):
            continue
        cls = _classes(x.astype(np.float64))
        parts += [f"{int(m.sum())} {label}" for (c, _, label) in _CLASSES if (m := cls[c]).any()
                  and c in ("nan", "posinf", "neginf")]
    tag = "nonfinite_present" if parts else "none"
    return {"tag": tag, "text": text + (f"; the inputs hold {', '.join(parts)}" if parts else "")}


def _outputs(r: np.ndarray, o: np.ndarray, mask: np.ndarray) -> dict:
    """What the outputs are at the differing values: non-finite on one side, one constant value, clipped
    at the output's own extremes, FLT_MAX, or the same values in another order."""
    k = int(mask.sum())
    tags, parts = [], []
    if k == 0:
        return {"tags": tags, "text": ""}
    rd, od = r[mask], o[mask]
    got_nf = int((~np.isfinite(od) & np.isfinite(rd)).sum())
    exp_nf = int((~np.isfinite(rd) & np.isfinite(od)).sum())
    if got_nf:
        tags.append("got_nonfinite")
        parts.append(f"got a non-finite value at {got_nf} where the reference is finite")
    if exp_nf:
        tags.append("expected_nonfinite")
        parts.append(f"got a finite value at {exp_nf} where the reference is non-finite")
    if (np.abs(od[np.isfinite(od)]) == FLT_MAX).any():
        tags.append("got_flt_max")
        parts.append("got ±FLT_MAX")
    ur, uo = np.unique(rd), np.unique(od)
    if len(ur) == 1 and len(uo) == 1:
        tags.append("constant")
        parts.append(f"expected {fmt(ur[0])}, got {fmt(uo[0])}" + (f" at all {k}" if k > 1 else ""))
    elif len(uo) == 1 and k >= EVIDENCE.min_pattern:
        tags.append("got_constant")
        parts.append(f"got {fmt(uo[0])} at all {k}")
    fo = o[np.isfinite(o)]
    if fo.size and k >= EVIDENCE.min_pattern and np.isfinite(od).all():
        top, bottom = fo.max(), fo.min()
        at_edge = (od == top) & (rd > top) | (od == bottom) & (rd < bottom)
        if at_edge.all() and top > bottom:
            tags.append("clipped")
            parts.append(f"got clipped to the output's range [{fmt(bottom)}, {fmt(top)}] where the reference "
                         f"goes to {fmt(rd.max() if (rd > top).any() else rd.min())}")
    if r.size > 1 and k > 1 and np.array_equal(np.sort(r.reshape(-1)), np.sort(o.reshape(-1)), equal_nan=True):
        tags.append("permuted")
        parts.append("the output holds the reference's values in another order")
    out = {"tags": tags, "text": "; ".join(parts)}
    with np.errstate(invalid="ignore"):
        for side, v in (("expected", rd), ("got", od)):
            fin = np.abs(v[np.isfinite(v)])
            if fin.size:
                out[f"{side}_absmax"] = num(fin.max())
    return out


def _pairs(r: np.ndarray, o: np.ndarray, mask: np.ndarray, xs: list[np.ndarray], elem: list[int],
           lead: int) -> list[dict]:
    """The first MAX_PAIRS differing values, largest difference first (non-finite ones first), ties in
    position order: position, input value(s) there (element map) or the unit's index, expected, got."""
    flat = np.flatnonzero(mask)
    if not flat.size:
        return []
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(o.reshape(-1)[flat] - r.reshape(-1)[flat])
    d = np.where(np.isnan(d), np.inf, d)
    pick = flat[np.argsort(-d, kind="stable")[:MAX_PAIRS]]
    out = []
    for p in pick:
        at = np.unravel_index(int(p), r.shape)
        pair = {"at": [int(i) for i in at], "expected": num(r.reshape(-1)[p]), "got": num(o.reshape(-1)[p])}
        if elem:
            pair["input"] = [num(xs[k].reshape(-1)[p]) for k in elem]
        elif lead:
            pair["unit"] = [int(i) for i in at[:lead]]
        out.append(pair)
    return out
