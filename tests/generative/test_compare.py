"""Parity figures of a generative artifact and their verdicts (pipeline/parity.py), on logits made up
to hit each rule: a near-tie flip is forgiven, a decisive one is not, and a bound probe past the bound
passes only as a refusal or as an output as close to the reference as the artifact is inside its bounds."""
from __future__ import annotations

import numpy as np

from pipeline import parity
from pipeline.generative import compare


def _ref(P=4, M=16, V=50, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((P, M, V)).astype(np.float32) * 3
    return {"logits": logits, "tokens": logits.argmax(-1), "nll": rng.uniform(2, 3, (2, 32))}


def test_identical_logits_are_identical_greedy_runs():
    ref = _ref()
    m, info = compare.parity({"logits": ref["logits"].copy(), "nll": ref["nll"].copy()}, ref)
    assert m["greedy_identical_share"] == 1.0 and m["greedy_steps_equal_min"] == 16
    assert m["sqnr_db"] == 200.0 and m["perplexity_increase_pct"] == 0.0
    assert info["first_divergent_step"] == [None] * 4
    assert parity.judge(m, "fp32", parity.for_generation("fp32")).status == "ok"


def test_a_decisive_flip_fails_fp32_and_names_the_first_divergent_step():
    ref = _ref()
    art = ref["logits"].copy() + np.float32(1e-5)
    p, t = 2, 5
    art[p, t, ref["tokens"][p, t]] -= 100          # the reference's pick is clearly not the artifact's
    m, info = compare.parity({"logits": art}, ref)
    assert info["first_divergent_step"][p] == t and m["greedy_steps_equal_min"] == t
    assert m["greedy_identical_share"] == 0.75
    v = parity.judge(m, "fp32", parity.for_generation("fp32"))
    assert v.status == "mismatch" and "top-1 agreement" in v.reason


def test_a_near_tie_flip_within_the_noise_is_forgiven():
    ref = _ref()
    rng = np.random.default_rng(1)
    art = ref["logits"] + rng.standard_normal(ref["logits"].shape).astype(np.float32) * 0.05   # ~35 dB noise
    p, t = 1, 3
    top2 = np.argsort(ref["logits"][p, t])[-2:]
    ref["logits"][p, t, top2[1]] = ref["logits"][p, t, top2[0]] + 1e-3      # a near-tie in the reference
    art[p, t, top2[0]] = art[p, t, top2[1]] + 1e-3                           # ... that the artifact flips
    ref["tokens"] = ref["logits"].argmax(-1)
    m, info = compare.parity({"logits": art}, ref)
    assert info["first_divergent_step"][p] == t
    assert m["top1_agreement"] < 1.0 and m["top1_agreement_decisive"] == 1.0
    assert parity.judge(m, "dynamic_int8", parity.for_generation("dynamic_int8")).status == "ok"


def test_perplexity_increase_is_judged():
    ref = _ref()
    m, _ = compare.parity({"logits": ref["logits"], "nll": ref["nll"] + 0.2}, ref)
    assert 20 < m["perplexity_increase_pct"] < 25     # exp(0.2) - 1
    v = parity.judge(m, "dynamic_int8", parity.for_generation("dynamic_int8"))
    assert v.status == "mismatch" and "held-out perplexity +22." in v.reason


def test_bound_outcomes():
    jb = parity.judge_bound
    assert jb(within=False, runs=False, sqnr_db=None, quantization="fp32") == "refused"
    assert jb(within=True, runs=False, sqnr_db=None, quantization="fp32") == "refused_valid"
    assert jb(within=True, runs=True, sqnr_db=120, quantization="fp32") == "ok"
    assert jb(within=True, runs=True, sqnr_db=30, quantization="fp32") == "wrong"
    assert jb(within=False, runs=True, sqnr_db=130, quantization="fp32", own_sqnr_db=131) == "accepted"
    assert jb(within=False, runs=True, sqnr_db=33, quantization="fp32", own_sqnr_db=131) == "silent_wrong"
    # an int8 file's own noise (36 dB) must not hide a clamped cache write (31 dB): measured on LiteRT int8
    assert jb(within=False, runs=True, sqnr_db=31.3, quantization="dynamic_int8", own_sqnr_db=36.3) == "silent_wrong"
    assert jb(within=False, runs=True, sqnr_db=35.0, quantization="dynamic_int8", own_sqnr_db=36.3) == "accepted"
    # a runtime whose process died on the input (its worker item): never safe, within or past a bound
    assert jb(within=False, runs=False, sqnr_db=None, quantization="fp32", died=True) == "crashed"
    assert set(parity.SAFE_BOUND_OUTCOMES) <= set(parity.BOUND_OUTCOMES) and "crashed" not in parity.SAFE_BOUND_OUTCOMES


def test_a_shape_mismatch_is_a_mismatch_not_a_crash():
    ref = _ref()
    m, info = compare.parity({"logits": ref["logits"][:, :3]}, ref)
    assert parity.judge(m, "fp32", parity.for_generation("fp32")).status == "mismatch"
    assert "logits" in info["error"]


def test_a_probe_whose_worker_died_is_crashed_and_the_measurement_stays(tmp_path):
    """bench._record joins a measurement's worker results with its probes' (one item each): a probe whose
    worker died (the worker protocol's `death`) is `crashed`, the measurement and the other probes stand."""
    from tests.generative import tiny_lm
    from pipeline.bench import profiles
    from pipeline.generative import bench, generate
    from pipeline.generative.session import LMFacts
    ref = _ref(P=2, M=4, V=320)
    ref["probe_logits"] = np.random.default_rng(2).standard_normal((tiny_lm.CONTEXT + 1, 320)).astype(np.float32)
    np.savez(tmp_path / "ref.npz", **ref)
    np.savez(tmp_path / "art.npz", logits=ref["logits"], nll=ref["nll"])
    np.savez(tmp_path / "p1.npz", logits=ref["probe_logits"][1])
    art = tmp_path / "model.onnx"
    art.write_bytes(b"x")
    rec = tiny_lm.export_record(art, "past_present", tmp_path)
    t = bench.Target(art, rec, LMFacts.of(rec.info), {"kind": "hf", "path": str(tmp_path)}, tmp_path)
    item = {"_target": t, "_prof": profiles.get("big-core"), "full": True, "outputs": str(tmp_path / "art.npz"),
            "_ref": tmp_path / "ref.npz"}
    ctx, one = generate.probes(tiny_lm.CONTEXT, [1])
    group = [item, {"probe": ctx}, {"probe": one, "outputs": str(tmp_path / "p1.npz")}]
    results = [{"status": "ok", "metrics": {"ttft_ms": 1.0}, "info": {}},
               {"status": "failed", "error": "worker killed by signal SIGSEGV (11)", "death": "crash"},
               {"status": "ok", "probe": {**one, "ran": True, "harness": ""}}]
    r = bench._record(group, results)
    bench._judge([t], [profiles.get("big-core")], [r])
    assert r.status == "ok" and r.metrics["ttft_ms"] == 1.0
    assert [(p["probe"], p["outcome"]) for p in r.info["probes"]] == [("context", "crashed"), ("prefill", "ok")]
    assert "SIGSEGV" in r.info["probes"][0]["error"]
