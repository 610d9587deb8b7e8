"""The generative export paths: only LMs take them, their records carry the generation contract, and
what they write runs with its KV cache as the reference computes.

Quick: the Keras twin's cache-in/cache-out TFLite (seeded tiny_lm, transfer twin) prefilled and decoded
through ai_edge_litert gives the PyTorch model's greedy tokens and logits. Slow: tiny_lm trained and
exported along every generative path (records, entry points read back from each file, the fp32
cache_io and Core AI files decoded against the reference).

    .venv/bin/python -m pytest -q tests/export/test_llm_paths.py            # quick
    .venv/bin/python -m pytest -q -m slow tests/export/test_llm_paths.py    # every path
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import models
from export import registry

SPEC = models.get("tiny_lm")
STEPS = 6
CONTRACT_KEYS = {"convention", "entry_points", "signatures", "vocab", "context", "layers", "kv_heads", "head_dim",
                 "prefill_max", "prefill_lengths", "bos_id", "eos_id", "tokenizer", "hf_folder"}


def test_generative_and_classic_paths_never_cross():
    gen, classic = registry.paths_for("generation"), registry.paths_for("classification")
    assert set(gen) == {"et_llm_xnnpack_fp32", "et_llm_xnnpack_8da4w", "litert_llm_fp32", "litert_llm_dynamic_int8",
                        "tflite_llm_fp32", "tflite_llm_dynamic_int8", "onnx_llm_fp32", "onnx_llm_dynamic_int8",
                        "coreai_llm_fp32", "coreai_llm_w8", "coreai_llm_w4"}
    assert not set(gen) & set(classic) and set(gen) | set(classic) == set(registry.all_paths())
    # an int8 path pairs with the fp32 path of its own task (the LM's tflite_llm_fp32 sorts after tflite_fp32)
    assert registry.fp32_sibling("tflite_dynamic_int8") == "tflite_fp32"
    assert registry.fp32_sibling("tflite_llm_dynamic_int8") == "tflite_llm_fp32"
    assert registry.fp32_sibling("et_llm_xnnpack_8da4w") == "et_llm_xnnpack_fp32"


def cache_io_greedy(path: Path, prompt: np.ndarray, steps: int, lm) -> tuple[list[int], list[np.ndarray]]:
    """Run a `cache_io` .tflite: prefill all but the prompt's last token (padded to the signature's
    length), then decode `steps` tokens greedily -> (tokens, logits of each step)."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    n = lm.prefills[0]
    pre, dec = it.get_signature_runner(f"prefill_{n}"), it.get_signature_runner("decode")
    caches = {k: np.zeros(d["shape"], np.float32) for k, d in dec.get_input_details().items() if k.startswith("kv_")}

    def mask(positions, rows):
        m = np.full((1, 1, rows, lm.context), -1e9, np.float32)
        for r, p in enumerate(positions):
            m[0, 0, r, :p + 1] = 0.0
        return m
    tokens = np.zeros((1, n), np.int32)
    tokens[0, :len(prompt) - 1] = prompt[:-1]
    pos = np.arange(n, dtype=np.int32)
    caches = pre(tokens=tokens, input_pos=pos, mask=mask(pos, n), **caches)
    seq, logits = [int(t) for t in prompt], []
    for _ in range(steps):
        p = len(seq) - 1
        out = dec(tokens=np.array([[seq[-1]]], np.int32), input_pos=np.array([p], np.int32), mask=mask([p], 1),
                  **caches)
        caches = {k: v for k, v in out.items() if k.startswith("kv_")}
        logits.append(out["logits"][0, 0])
        seq.append(int(out["logits"][0, 0].argmax()))
    return seq[len(prompt):], logits


def coreai_state_greedy(path: Path, prompt: np.ndarray, steps: int, lm) -> tuple[list[int], list[np.ndarray]]:
    """Run a `coreai_state` .aimodel on Core AI's Linux CPU runtime: zero state arrays (the signature's),
    prefill the whole prompt padded to the prefill length (its logits at the prompt's last position give
    the first token), then decode greedily; the runtime updates the state in place."""
    import asyncio

    from coreai.authoring import AIModelAsset
    from coreai.runtime import NDArray
    n = lm.prefills[0]

    async def run():
        async with AIModelAsset.load(str(path)).executable() as m:
            pre, dec = m.load_function(f"prefill_{n}"), m.load_function("decode")
            sig = pre.desc
            state = {k: NDArray(np.zeros([int(d) for d in sig.state_descriptor(k).shape],
                                         np.dtype(str(sig.state_descriptor(k).dtype))))
                     for k in sig.state_names}
            tokens = np.zeros((1, n), np.int32)
            tokens[0, :len(prompt)] = prompt
            out = await pre({"input_ids": NDArray(tokens), "cache_position": NDArray(np.arange(n, dtype=np.int32))},
                            state=state)
            seq, logits = [int(t) for t in prompt], []
            nxt = out["logits"].numpy()[0, len(prompt) - 1]
            for _ in range(steps):
                logits.append(nxt)
                seq.append(int(nxt.argmax()))
                out = await dec({"input_ids": NDArray(np.array([[seq[-1]]], np.int32)),
                                 "cache_position": NDArray(np.array([len(seq) - 1], np.int32))}, state=state)
                nxt = out["logits"].numpy()[0, 0]
            return seq[len(prompt):], logits
    return asyncio.run(run())


GREEDY = {"cache_io": cache_io_greedy, "coreai_state": coreai_state_greedy}


def torch_last(tmodel):
    """The PyTorch twin without a cache: token list -> logits of the last position."""
    import torch

    def last(seq: list[int]) -> np.ndarray:
        with torch.no_grad():
            return tmodel(input_ids=torch.tensor([seq])).logits[0, -1].numpy()
    return last


def keras_last(kmodel):
    from models.lm_arch import keras_logits
    return lambda seq: keras_logits(kmodel, SPEC.lm, np.asarray([seq], np.int32))[0, -1]


def check_greedy(path: Path, last, prompt, atol: float, convention: str = "cache_io") -> None:
    """The file's greedy tokens and logits vs the reference `last` run on the whole sequence each step."""
    got, got_logits = GREEDY[convention](path, prompt, STEPS, SPEC.lm)
    seq, diff = [int(t) for t in prompt], 0.0
    for g in got_logits:
        ref = last(seq)
        diff = max(diff, float(np.abs(g - ref).max()))
        seq.append(int(ref.argmax()))
    want = seq[len(prompt):]
    assert got == want and diff <= atol, f"{path.name}: tokens {got} vs {want}, max |logit diff| {diff:.3g}"


def _window() -> np.ndarray:
    return np.random.default_rng(0).integers(3, SPEC.lm.vocab, (2, SPEC.lm.context)).astype(np.int32)


def _export_one(path: str, source: str, model, window: np.ndarray, out):
    """One registered generative path on the seeded model, through export.run as the stage runs it; must be ok."""
    from export.run import export_to
    p = registry.get(path)
    ctx = registry.ExportContext(SPEC, source, model, window[:1], window, out, out.parent)
    rec = export_to(p, ctx, dict(kind="export", model=SPEC.name, source=source, path=p.name, format=p.format,
                                 quantization=p.quantization))
    assert rec.status == "ok", rec.error
    return rec


def test_keras_cache_tflite_decodes_like_the_torch_model(tmp_path):
    tmodel, ktw = SPEC.build_torch(), SPEC.build_keras()
    SPEC.transfer(tmodel, ktw)
    window = _window()
    rec = _export_one("tflite_llm_fp32", "keras_tw", ktw, window, tmp_path / "m.tflite")
    gen = rec.info["generation"]
    assert CONTRACT_KEYS <= set(gen) and gen["convention"] == "cache_io"
    assert gen["entry_points"] == {"prefill": ["prefill_32"], "decode": "decode"}
    sig = gen["signatures"]["decode"]
    assert sig["inputs"]["kv_cache_v_0"]["shape"] == [1, SPEC.lm.kv_heads, SPEC.lm.dim, SPEC.lm.context]
    assert sig["outputs"]["logits"]["shape"] == [1, 1, SPEC.lm.vocab] and "logits" not in gen["signatures"]["prefill_32"]["outputs"]
    assert rec.metrics["size_bytes"] > 4 * SPEC.lm.params() * 0.9   # the weights are in the file (fp32)
    check_greedy(tmp_path / "m.tflite", torch_last(tmodel), window[0, :20], atol=1e-4)


@pytest.mark.slow
def test_coreai_lm_decodes_like_the_torch_model(tmp_path):
    """Core AI's state-carrying .aimodel (seeded tiny_lm) on Core AI's Linux CPU runtime: prefill + decode
    give the PyTorch model's greedy tokens and logits; the record reads its functions and states back."""
    tmodel = SPEC.build_torch()
    window = _window()
    rec = _export_one("coreai_llm_fp32", "torch", tmodel, window, tmp_path / "m.aimodel")
    gen = rec.info["generation"]
    assert CONTRACT_KEYS <= set(gen) and gen["convention"] == "coreai_state"
    assert gen["entry_points"] == {"prefill": ["prefill_32"], "decode": "decode"}
    states = gen["signatures"]["decode"]["states"]
    assert states["b_key_cache_1"] == {"shape": [1, SPEC.lm.kv_heads, SPEC.lm.context, SPEC.lm.dim], "dtype": "float32"}
    assert gen["signatures"]["prefill_32"]["outputs"]["logits"]["shape"] == [1, 32, SPEC.lm.vocab]
    check_greedy(tmp_path / "m.aimodel", torch_last(tmodel), window[0, :20], atol=1e-4, convention="coreai_state")


# ---- slow: the trained tiny_lm along every generative path -------------------------------------------

@pytest.fixture(scope="module")
def lm_exports():
    from conftest import TEST_ARTIFACTS, cache_lock
    from export.run import export_model
    with cache_lock():
        records = export_model("tiny_lm", TEST_ARTIFACTS, log=lambda m: None)
    return {(r.source, r.path): r for r in records}, TEST_ARTIFACTS


def _entry_points(path: Path, fmt: str) -> set[str]:
    """The entry points as the runtime that loads the file sees them."""
    if fmt == "pte":
        from executorch.runtime import Runtime
        return set(Runtime.get().load_program(str(path)).method_names)
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter
        return set(Interpreter(model_path=str(path)).get_signature_list())
    if fmt == "aimodel":
        from coreai.authoring import AIModelAsset
        return set(AIModelAsset.load(path).summary().function_names)
    import onnxruntime as ort
    return {i.name for i in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()}


@pytest.mark.slow
def test_every_generative_path_exports_the_trained_lm(lm_exports):
    from conftest import ROOT
    from pipeline.train import load_keras, load_torch
    records, artifacts = lm_exports
    expected = {(s, n) for n, p in registry.paths_for("generation").items() for s in p.sources}
    assert set(records) == expected
    window = np.load(artifacts / "tiny_lm" / "train" / "eval.npz")["x"][0]
    references = {"torch": torch_last(load_torch(SPEC, artifacts)), "keras_tw": torch_last(load_torch(SPEC, artifacts)),
                  "keras": keras_last(load_keras(SPEC, artifacts, "keras"))}
    for (source, name), rec in sorted(records.items()):
        assert rec.status == "ok", f"{source}__{name}: {rec.error}"
        gen = rec.info["generation"]
        assert CONTRACT_KEYS <= set(gen), f"{name}: missing {CONTRACT_KEYS - set(gen)}"
        assert (ROOT / gen["tokenizer"]).exists() and (ROOT / gen["hf_folder"] / "config.json").exists()
        f = ROOT / rec.artifact
        seen = _entry_points(f, rec.format)
        wanted = ({gen["entry_points"]["decode"], *gen["entry_points"]["prefill"]} if rec.format != "onnx"
                  else set(gen["signatures"]["main"]["inputs"]))
        assert wanted <= seen, f"{name}: entry points {wanted - seen} not in the file ({seen})"
        if gen["convention"] in GREEDY and rec.quantization == "fp32":
            check_greedy(f, references[source], window[:20], atol=1e-4, convention=gen["convention"])
