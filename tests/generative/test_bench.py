"""The generation bench end to end on a real runtime (ONNX Runtime) through the worker protocol, in the
OS sandbox as for a user's files: records with the per-token figures and parity, a wrong artifact judged
`mismatch` with the size of the error, a corrupt file `failed` with its name, and a warm run that
measures nothing again."""
from __future__ import annotations

import pytest

from tests.generative import tiny_lm
from pipeline.bench import profiles
from pipeline.generative import bench


@pytest.fixture(scope="module")
def run(tmp_path_factory, lm_folder, other_lm_folder, lm_onnx):
    art = tmp_path_factory.mktemp("artifacts")
    for model in ("tiny", "other"):
        tiny_lm.heldout(art, model)
    broken = art / "broken.onnx"
    broken.write_bytes(lm_onnx.read_bytes()[:5000])
    exports = [tiny_lm.export_record(lm_onnx, "past_present", lm_folder, path="onnx_llm_fp32"),
               # the same file judged against another model's weights: must not pass
               tiny_lm.export_record(lm_onnx, "past_present", other_lm_folder, model="other", path="onnx_llm_fp32"),
               tiny_lm.export_record(broken, "past_present", lm_folder, path="onnx_llm_broken")]
    targets, skipped = bench.targets(exports, art)
    assert not skipped
    cfg = profiles.BenchConfig(profiles=("big-core",))
    cache, logs = art / "cache", []
    # as a user's files: the reference and every measurement in the OS sandbox (pipeline/sandbox.py)
    first = bench.run(targets, cfg, cache, user_model=True, log=logs.append)
    again = []
    second = bench.run(targets, cfg, cache, user_model=True, log=again.append)
    return first, second, logs, again


def test_figures_and_parity_of_a_good_artifact(run):
    r = run[0][0]
    assert r.status == "ok", r.error
    m = r.metrics
    assert (r.kind, r.runtime, r.profile, r.threads) == ("bench", "onnxruntime", "big-core", 1)
    assert m["ttft_ms"] > 0 and m["decode_tokens_per_s"] > 0 and m["peak_rss_mb"] > m["peak_rss_above_baseline_mb"] > 0
    # 4 prompts x (16 steps - the prefill's - the first decode call) decode calls timed
    assert m["decode_tokens_timed"] == 4 * 14 and m["prompt_tokens"] == tiny_lm.PREFILL_MAX
    assert m["greedy_identical_share"] == 1.0 and m["greedy_steps_equal_min"] == 16 and m["sqnr_db"] > 60
    assert abs(m["perplexity_increase_pct"]) < 1e-3 and m["heldout_tokens"] == 2 * (tiny_lm.CONTEXT - 32)
    assert m["size_bytes"] > 0 and r.info["first_divergent_step"] == [None] * 4
    probes = {(p["probe"], p["length"]): p for p in r.info["probes"]}
    assert {k: p["outcome"] for k, p in probes.items()} == {
        ("context", 65): "accepted", ("prefill", 1): "ok", ("prefill", 32): "ok", ("prefill", 33): "accepted"}
    assert "outside the declared prefill bounds [1, 32]" in probes[("prefill", 33)]["harness"]


def test_an_artifact_that_computes_another_model_is_a_mismatch_with_the_error_size(run):
    r = run[0][1]
    assert r.status == "mismatch"
    assert r.error.startswith("fp32 parity: SQNR ") and "dB < 60 dB" in r.error and "top-1 agreement" in r.error


def test_a_corrupt_file_fails_alone_naming_the_file(run):
    r = run[0][2]
    assert r.status == "failed" and "broken.onnx" in r.error


def test_a_warm_run_measures_nothing_again(run):
    first, second, logs, again = run
    assert any("reference(s) computed" in ln for ln in logs) and any("onnxruntime:" in ln for ln in logs)
    assert again == [] or not any("computed" in ln or "in one worker" in ln for ln in again)
    assert [(r.status, r.metrics, r.created) for r in second] == [(r.status, r.metrics, r.created) for r in first]
