"""The reference a generative artifact is judged against: its source model as a plain full-sequence
forward with no cache (tokens [T] -> logits [T, V]), so every cache implementation is checked against
a computation that has none.

    fwd = reference.load({"kind": "hf", "path": "artifacts/tiny_lm/train/hf"})
    arrays = reference.compute(fwd, workload)      # what compare.py reads

Kinds: `hf` (a Hugging Face-style folder: config.json + safetensors, loaded by transformers with
`use_safetensors=True` and no remote code: nothing in the folder runs); `keras` (a zoo model's Keras
twin: the registry's `build_keras()` with the twin's trained weights, `.weights.h5`). Runs in a worker
(`worker.py`): it imports torch or TensorFlow.
"""
from __future__ import annotations

import numpy as np

from pipeline.generative.generate import Workload, log_softmax_at

def load(ref: dict, threads: int = 1):
    if ref.get("kind") not in KINDS:
        raise ValueError(f"reference kind {ref.get('kind')!r} not in {tuple(KINDS)}")
    return KINDS[ref["kind"]](ref, threads)


def load_hf(folder, threads: int = 1):
    """A Hugging Face folder's causal LM, from its safetensors only (no pickle, no remote code), float32.
    A weight the folder lacks would be left at its random initialisation by transformers (a warning,
    not an error): refused here, naming it."""
    # transformers' Hub kernels would be fetched at run time: off (nothing is downloaded here), through the
    # one module that switches them off before transformers' models are first imported
    import torch
    from models.lm_hf import transformers
    AutoModelForCausalLM = transformers().AutoModelForCausalLM
    torch.set_num_threads(threads)
    model, loading = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True, trust_remote_code=False,
                                                          dtype=torch.float32, output_loading_info=True)
    missing = sorted(loading.get("missing_keys") or [])
    if missing:
        raise ValueError(f"{folder}: the safetensors lack {len(missing)} weight(s) of the model (e.g. {missing[0]}); "
                         "refused: they would be random")
    return model.eval()


def _hf(ref: dict, threads: int):
    import torch
    model = load_hf(ref["path"], threads)

    def fwd(tokens: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ids = torch.from_numpy(np.asarray(tokens, np.int64).reshape(1, -1))
            return model(input_ids=ids, use_cache=False).logits[0].float().numpy()
    return fwd


def _keras(ref: dict, threads: int):
    import tensorflow as tf

    import models
    from models.lm_arch import keras_logits
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    spec = models.get(ref["model"])
    model = spec.build_keras()
    model.load_weights(ref["path"])

    def fwd(tokens: np.ndarray) -> np.ndarray:   # any length (the model's own input is [B, context])
        return np.asarray(keras_logits(model, spec.lm, np.asarray(tokens, np.int32).reshape(1, -1)), np.float32)[0]
    return fwd


KINDS = {"hf": _hf, "keras": _keras}


def compute(fwd, w: Workload) -> dict[str, np.ndarray]:
    """The reference side of every comparison, from full forwards:
    tokens [P, M] / logits [P, M, V]: free-running greedy steps after each prompt (the teacher tokens);
    nll [W, T-K]: teacher-forced NLL of the held-out windows (the same positions as `generate.heldout`);
    probe_logits [C + 1, V]: logits at every position of the probe tokens (a bound probe of length n
    reads row n; the context probe row C, one past a C-position cache)."""
    P, M = len(w.prompts), w.steps
    tokens = np.zeros((P, M), np.int64)
    logits = None
    for p in range(P):
        seq = [int(t) for t in w.prompt(p)]
        for t in range(M):
            lg = fwd(np.array(seq))[-1]
            if logits is None:
                logits = np.zeros((P, M, lg.shape[-1]), np.float32)
            logits[p, t] = lg
            tokens[p, t] = int(lg.argmax())
            seq.append(int(tokens[p, t]))
    W, T = w.heldout.shape
    K = w.heldout_prefill
    nll = np.zeros((W, max(T - K, 0)))
    for i, win in enumerate(w.heldout):
        full = fwd(win)
        for j in range(K, T):
            nll[i, j - K] = -log_softmax_at(full[j - 1], int(win[j]))
    return {"tokens": tokens, "logits": logits, "nll": nll,
            "probe_logits": np.asarray(fwd(w.probe_tokens), np.float32)}
