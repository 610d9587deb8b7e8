"""The parity rule (pipeline/parity.py): thresholds, the verdict with the size of the error, and the
zoo bench applying its models' Tolerances (a numerically wrong artifact is `mismatch`, never `ok`)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import models
from pipeline import parity


def test_judge_names_every_miss_with_its_size():
    v = parity.judge({"sqnr_db": 9.5, "top1_agreement": 0.9, "max_abs_diff": 0.2}, "int8", parity.DEFAULTS["int8"])
    assert v.status == "mismatch"
    assert "SQNR 9.5 dB < 15 dB" in v.reason and "top-1 agreement 0.900 < 0.95" in v.reason
    assert parity.judge({"sqnr_db": 40.0, "top1_agreement": 1.0}, "int8", parity.DEFAULTS["int8"]).status == "ok"


def test_bounds_hold_at_their_edge_and_relative_diff():
    t = parity.Thresholds(max_abs_diff=1e-4)
    assert parity.judge({"max_abs_diff": 1e-4}, "fp32", t).status == "ok"
    assert parity.judge({"max_abs_diff": 1.01e-4}, "fp32", t).status == "mismatch"
    rel = parity.DEFAULTS["fp32"]   # 1e-3 of max(1, |ref| max)
    assert parity.judge({"max_abs_diff": 5e-3, "ref_absmax": 10.0, "sqnr_db": 80.0}, "fp32", rel).status == "ok"
    assert parity.judge({"max_abs_diff": 5e-3, "ref_absmax": 1.0, "sqnr_db": 80.0}, "fp32", rel).status == "mismatch"
    assert parity.judge({"sqnr_db": float("nan")}, "fp32", rel).status == "mismatch"


def test_compare_judges_top1_only_for_logits():
    ref = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    m = parity.compare([ref + 1e-3], [ref])
    assert m["top1_agreement"] == 1.0 and m["sqnr_db"] > 40 and m["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    assert "top1_agreement" not in parity.compare([ref[:, :1]], [ref[:, :1]])
    assert parity.judge(parity.compare([ref], [ref, ref]), "fp32", parity.DEFAULTS["fp32"]).status == "mismatch"


def test_overrides_and_bad_keys():
    t = parity.with_overrides(parity.DEFAULTS, ["int8.min_sqnr_db=10", "fp32.max_rel_diff=off"])
    assert t["int8"].min_sqnr_db == 10 and t["fp32"].max_rel_diff is None
    assert parity.DEFAULTS["int8"].min_sqnr_db == 15       # the defaults are not changed
    for bad in ("int4.min_sqnr_db=1", "int8.sqnr=1", "int8.min_sqnr_db", "int8.min_sqnr_db=abc"):
        with pytest.raises(ValueError, match="--tolerance"):
            parity.with_overrides(parity.DEFAULTS, [bad])


def test_zoo_thresholds_come_from_the_model_tolerances():
    spec = models.get("digits_cnn")
    assert parity.for_zoo(spec, "fp32").max_abs_diff == spec.tolerances.fp32_atol
    assert parity.for_zoo(spec, "int8").min_top1_agreement == spec.tolerances.int8_top1_agreement
    recon = dataclasses.replace(spec, task="reconstruction")
    assert parity.for_zoo(recon, "int8") == parity.Thresholds()    # no top-1 for a reconstruction


def test_zoo_bench_marks_a_wrong_artifact_mismatch(digits_exports, tmp_path):
    """A real int8 artifact in the real runtime, judged against a reference it does not compute
    (the eval set's reference outputs negated): every profile's record is `mismatch` with the reason."""
    from conftest import TEST_ARTIFACTS
    from pipeline.bench import harness

    (t,) = harness.targets_from_exports([digits_exports[("keras", "tflite_int8")]], TEST_ARTIFACTS)
    with np.load(t.eval_npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["ref_keras"] = -arrays["ref_keras"]
    np.savez(tmp_path / "eval.npz", **arrays)
    wrong = dataclasses.replace(t, eval_npz=tmp_path / "eval.npz", runtimes=("litert",))
    cfg = harness.config_with(profiles=("big-core", "2-core"), min_runs=5, min_seconds=0.0, ci_pct=0.0, repeats=1,
                              op_profile=False, peer=False, eval_limit=50)
    recs = harness.run([wrong], cfg, tmp_path / "cache", log=lambda m: None)
    assert [r.profile for r in recs] == ["big-core", "2-core"]
    assert all(r.status == "mismatch" for r in recs), [(r.status, r.error) for r in recs]
    assert "top-1 agreement" in recs[0].error and recs[0].metrics["top1_agreement"] < 0.97
    ok = harness.run([dataclasses.replace(t, runtimes=("litert",))], cfg, tmp_path / "cache", log=lambda m: None)
    assert all(r.status == "ok" for r in ok), [(r.status, r.error) for r in ok]


def test_top1_counts_only_samples_the_noise_cannot_flip():
    """Near-tied logits (a seeded model on random inputs) flip under int8 noise at high SQNR: those
    samples are not judged by top-1; a flip where the reference's lead is decisive is a real error."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 10)).astype(np.float32) * 10
    ref[:32, 0] = ref[:32].max(axis=1) + 1.0
    ref[:32, 1] = ref[:32, 0] + 1e-3                       # half the samples: top-1 and runner-up tied
    ref[32:, 0] = ref[32:].max(axis=1) + 5.0              # the other half: class 0 leads by 5
    out = ref + rng.standard_normal(ref.shape).astype(np.float32) * 0.05
    m = parity.compare([out], [ref])
    assert m["top1_agreement"] < 0.95 and m["sqnr_db"] > 40          # raw figure: ties flipped
    assert m["top1_decisive_samples"] == 32 and m["top1_agreement_decisive"] == 1.0
    assert parity.judge(m, "int8", parity.DEFAULTS["int8"]).status == "ok"
    bad = out.copy()
    bad[32:40, 0] -= 6.0                                   # 8 decisive samples lose their top-1 (lead 5)
    v = parity.judge(parity.compare([bad], [ref]), "int8", parity.DEFAULTS["int8"])
    assert v.status == "mismatch" and "top-1 agreement 0.750" in v.reason and "32 samples, 50%" in v.reason, v.reason


def test_top1_raw_when_too_few_samples_are_decisive():
    """A wrong artifact's noise makes nothing decisive: then every sample counts (never a free pass)."""
    ref = np.random.default_rng(1).standard_normal((40, 5)).astype(np.float32)
    m = parity.compare([-ref], [ref])
    assert m["top1_decisive_share"] < 0.5
    v = parity.judge(m, "int8", parity.Thresholds(min_top1_agreement=0.9))
    assert v.status == "mismatch" and f"top-1 agreement {m['top1_agreement']:.3f} < 0.9" in v.reason
    assert "samples" not in v.reason
