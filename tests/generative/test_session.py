"""One Session interface over a real runtime (ONNX Runtime, past/present convention): the artifact's
greedy tokens equal the no-cache reference's, a new sequence starts clean, and the declared bounds are
refused by the harness with one line while the raw probe shows what the runtime itself does. The tests
that load the reference model in this process are slow (transformers + torch); the fast end-to-end
check of the same through the workers is test_bench.py."""
from __future__ import annotations

import numpy as np
import pytest

from tests.generative import tiny_lm
from pipeline.generative import generate, open_session
from pipeline.generative.session import BoundError, LMFacts


def _facts(convention="past_present") -> LMFacts:
    return LMFacts.of({"generation": tiny_lm.generation(convention)})


def _greedy(s, prompt, steps):
    s.reset()
    toks = [int(s.prefill(prompt).argmax())]
    while len(toks) < steps:
        toks.append(int(s.decode(toks[-1]).argmax()))
    return toks


def _reference_greedy(fwd, prompt, steps):
    seq = list(prompt)
    for _ in range(steps):
        seq.append(int(fwd(np.array(seq))[-1].argmax()))
    return seq[len(prompt):]


@pytest.mark.slow
def test_greedy_tokens_equal_the_reference_and_sequences_start_clean(lm_onnx, lm_reference):
    s = open_session(lm_onnx, _facts())
    prompts = [np.arange(3, 3 + 20) % 300 + 3, np.array([5, 17, 99, 4, 250, 7, 8, 9])]
    for p in prompts + prompts[:1]:   # the third run repeats the first after another sequence
        assert _greedy(s, p, 12) == _reference_greedy(lm_reference, p, 12)
    assert s.pos == len(prompts[0]) + 11


def test_bounds_are_refused_by_the_harness_with_one_line(lm_onnx):
    s = open_session(lm_onnx, _facts())
    with pytest.raises(BoundError, match=r"model.onnx: a prompt of 33 tokens is outside the declared prefill bounds \[1, 32\]"):
        s.prefill(np.ones(33, np.int64))
    with pytest.raises(BoundError, match="outside the declared prefill bounds"):
        s.prefill(np.ones(0, np.int64))
    with pytest.raises(BoundError, match="vocabulary"):
        s.prefill(np.array([1, 320]))
    s.reset()
    s.prefill(np.ones(32, np.int64))
    for _ in range(tiny_lm.CONTEXT - 32):
        s.decode(3)
    with pytest.raises(BoundError, match="position 64 is past the cache of 64 positions"):
        s.decode(3)


@pytest.mark.slow
def test_the_probe_shows_onnx_runtime_takes_what_nothing_in_the_file_bounds(lm_onnx, lm_reference):
    """ONNX has no upper bound in the file: past the declared prefill bound and past the cache it runs,
    and the outputs are what a model without those bounds computes (the probe's raw calls)."""
    s = open_session(lm_onnx, _facts())
    win = np.random.default_rng(0).integers(3, 300, tiny_lm.CONTEXT + 1).astype(np.int64)
    w = generate.Workload(prompts=win[None, :8], steps=3, heldout=win[None, :-1], heldout_prefill=8,
                          probe_tokens=win, probe_lengths=(1, 32, 33))
    nll = generate.heldout(s, w)
    ctx, *probes = [generate.probe(s, w, p) for p in generate.probes(tiny_lm.CONTEXT, w.probe_lengths)]
    assert ctx["ran"] and ctx["harness"] == "model.onnx: position 64 is past the cache of 64 positions"
    full = lm_reference(win)
    np.testing.assert_allclose(ctx["logits"], full[-1], atol=1e-4)
    ref_nll = [-generate.log_softmax_at(full[j - 1], int(win[j])) for j in range(8, tiny_lm.CONTEXT)]
    np.testing.assert_allclose(nll[0], ref_nll, atol=1e-4)
    assert [p["ran"] for p in probes] == [True, True, True]
    assert [bool(p["harness"]) for p in probes] == [False, False, True]
    for p in probes:
        np.testing.assert_allclose(p["logits"], full[p["length"]], atol=1e-4)


@pytest.mark.slow
def test_ragged_prompts_teacher_forced_match_the_reference_step_by_step(lm_onnx, lm_reference):
    """A user's prompts differ in length: the workload pads them and runs each at its own length; the
    artifact's logits along the reference's greedy tokens equal the reference's at every step."""
    from pipeline.generative import reference
    rng = np.random.default_rng(1)
    lengths = (3, 11, 7)
    prompts = np.zeros((3, 11), np.int64)
    for i, n in enumerate(lengths):
        prompts[i, :n] = rng.integers(3, 300, n)
    text = rng.integers(3, 300, 200)
    w = generate.Workload(prompts=prompts, steps=6, heldout=np.zeros((0, 2), np.int64), heldout_prefill=1,
                          probe_tokens=text[:tiny_lm.CONTEXT + 1], probe_lengths=(1,), prompt_lengths=lengths)
    ref = reference.compute(lm_reference, w)
    out = generate.run_prompts(open_session(lm_onnx, _facts()), w, ref["tokens"])
    np.testing.assert_allclose(out["logits"], ref["logits"], atol=1e-4)
    assert out["decode_s"].shape == (3, 4) and (out["ttft_s"] > 0).all()


@pytest.mark.slow
def test_core_ai_state_session_greedy_restart_and_bounds(lm_folder, lm_reference):
    """coreai_state (Core AI's Linux CPU runtime, the KV cache as state): greedy tokens equal the
    reference's, a second sequence on fresh state too, the prefill function's fixed length is the
    declared bound (refused by the harness past it) and the probe shows what the runtime does there."""
    g = tiny_lm.generation("coreai_state")
    g.update(prefill_lengths=[tiny_lm.PREFILL_MAX], entry_points={"prefill": [f"prefill_{tiny_lm.PREFILL_MAX}"],
                                                                  "decode": "decode"})
    s = open_session(tiny_lm.coreai_file(lm_folder), LMFacts.of({"generation": g}))
    prompts = [np.arange(3, 3 + 20) % 300 + 3, np.array([5, 17, 99, 4, 250, 7, 8, 9])]
    for p in prompts + prompts[:1]:
        assert _greedy(s, p, 12) == _reference_greedy(lm_reference, p, 12)
    with pytest.raises(BoundError, match=r"model.aimodel: a prompt of 33 tokens is outside the declared prefill bounds \[1, 32\]"):
        s.prefill(np.ones(33, np.int64))
    win = np.random.default_rng(0).integers(3, 300, tiny_lm.CONTEXT + 1).astype(np.int64)
    w = generate.Workload(prompts=win[None, :8], steps=3, heldout=win[None, :-1], heldout_prefill=8,
                          probe_tokens=win, probe_lengths=(1, 32, 33))
    full = lm_reference(win)
    for p in generate.probes(tiny_lm.CONTEXT, (1, 32))[1:]:      # within the bounds: the reference's logits
        np.testing.assert_allclose(generate.probe(s, w, p)["logits"], full[p["length"]], atol=1e-4)
    past = generate.probe(s, w, {"probe": "prefill", "length": 33, "position": 33})
    assert past["harness"].endswith("outside the declared prefill bounds [1, 32]")
    assert not past["ran"] and "input_ids has an invalid shape: [1, 33], expected: [1, 32]" in past["error"]
