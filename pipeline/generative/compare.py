"""Parity figures of one generative artifact against its reference (numpy only), judged by
`pipeline/parity.py` (GENERATIVE, judge, judge_bound).

    metrics, info = compare.parity(art_npz_arrays, ref_npz_arrays)
    probes = compare.probes(info_probes, art_arrays, ref_arrays, quantization)

Metric names (README "Results schema", docs/generative.md):
  sqnr_db, max_abs_diff, top1_agreement[_decisive], top1_decisive_*   stats.agreement over the logits of
      every step of every prompt (teacher-forced along the reference's greedy tokens)
  logits_sqnr_db_min        the worst single step's SQNR
  greedy_steps_equal_min    free-running greedy: the fewest leading steps equal to the reference's over the
                            prompts (= decode_steps when every prompt's tokens are identical)
  greedy_identical_share    share of prompts whose M greedy tokens are all the reference's
  perplexity, reference_perplexity, perplexity_increase_pct   held-out, teacher-forced, same positions
"""
from __future__ import annotations

import numpy as np

from pipeline.bench.stats import agreement


def _sqnr(out: np.ndarray, ref: np.ndarray) -> float:
    out, ref = out.astype(np.float64), ref.astype(np.float64)
    noise = ((out - ref) ** 2).sum(-1)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10((ref ** 2).sum(-1) / np.where(noise > 0, noise, np.nan))
    return np.nan_to_num(db, nan=200.0).clip(max=200.0)


def parity(art: dict, ref: dict) -> tuple[dict, dict]:
    """-> (metrics, info) of the artifact's prompts (and held-out NLL when it has one) vs the reference."""
    lg, rl, rt = art["logits"], ref["logits"], ref["tokens"]
    P, M, V = rl.shape
    if lg.shape != rl.shape:
        return {"output_count_mismatch": 1.0, "sqnr_db": float("nan")}, \
            {"error": f"logits {tuple(lg.shape)} vs the reference's {tuple(rl.shape)}"}
    m = agreement(lg.reshape(-1, V), rl.reshape(-1, V))
    m["ref_absmax"] = float(np.abs(rl).max())
    if not np.isfinite(lg).all():
        m["sqnr_db"] = float("nan")
    steps = _sqnr(lg, rl)                                      # [P, M]
    m["logits_sqnr_db_min"] = float(steps.min())
    same = lg.argmax(-1) == rt                                 # [P, M]
    lead = np.where(same.all(1), M, same.argmin(1))            # leading equal steps per prompt
    m["greedy_steps_equal_min"] = float(lead.min())
    m["greedy_identical_share"] = float((lead == M).mean())
    info = {"sqnr_db_per_step": [round(float(v), 2) for v in steps.min(0)],
            "first_divergent_step": [int(v) if v < M else None for v in lead]}
    if "nll" in art and "nll" in ref and art["nll"].size and art["nll"].shape == ref["nll"].shape:
        ppl, rppl = float(np.exp(art["nll"].mean())), float(np.exp(ref["nll"].mean()))
        m.update(perplexity=ppl, reference_perplexity=rppl, perplexity_increase_pct=(ppl / rppl - 1) * 100,
                 heldout_tokens=float(art["nll"].size))
    return m, info


def probes(found: list[dict], ref: dict, bound: int, context: int) -> list[dict]:
    """Each bound probe (with the logits it returned, if it ran) -> without the logits, with whether it
    was within the declared bounds and the SQNR of what ran vs the reference at its position (its
    outcome is judged from these: parity.judge_bound)."""
    out = []
    for p in found:
        q = {k: v for k, v in p.items() if k != "logits"}
        q["within"] = p["length"] <= (context if p["probe"] == "context" else bound)
        if p.get("ran"):
            want = ref["probe_logits"][p["position"]]
            q["sqnr_db"] = round(float(_sqnr(p["logits"], want)), 2)
            q["same_top1"] = bool(p["logits"].argmax() == want.argmax())
        out.append(q)
    return out
