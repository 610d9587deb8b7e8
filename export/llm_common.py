"""What every generative export path shares: the facts its record carries for the generation harness
(`info["generation"]`, the contract in docs/generative.md), the model's Hugging Face folder, and
reading a written file's entry points back.

A generative path gets an `ExportContext` whose `spec.lm` is the `LMConfig` (the zoo's ModelSpec, or
the spec a user's LM folder was described by), whose `model` is the twin (a `LlamaForCausalLM`, or
the Keras Llama of `models/lm_arch.py`), `example` one int32 token window [1, context] and `calib`
token windows [k, context]. `ctx.shared["hf_folder"]`, when the driver sets it, is the folder the
PyTorch twin was loaded from (its tokenizer beside it); without it the twin is saved to the work dir.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from export.registry import ExportContext

CONVENTIONS = {
    "static_cache": "the KV cache lives in the program (mutable buffers, zero at load); each call "
                    "passes token ids and their cache positions",
    "cache_io": "the KV cache is passed in and returned by every call (K [1, kv, C, D], V transposed "
                "[1, kv, D, C]), with an additive attention mask [1, 1, N, C] the caller builds",
    "past_present": "past keys/values [1, kv, P, D] in, present [1, kv, P+S, D] out; prefill is P = 0",
    "coreai_state": "the KV cache is Core AI state: the caller allocates it once (zeros) and passes the same "
                    "arrays to every call, which updates them in place",
}


def hf_folder(ctx: ExportContext) -> Path:
    """The PyTorch twin as a Hugging Face folder: the driver's (`shared["hf_folder"]`), or saved once
    per worker into a temp folder (a model given in memory; the run's scratch TMPDIR removes it)."""
    if "hf_folder" in ctx.shared:
        return Path(ctx.shared["hf_folder"])
    if "hf_saved" not in ctx.shared:
        dest = Path(tempfile.mkdtemp(prefix=f"hf-{ctx.spec.name}-"))
        ctx.model.save_pretrained(str(dest), safe_serialization=True)
        ctx.shared["hf_saved"] = dest
    return ctx.shared["hf_saved"]


def tokenizer_file(ctx: ExportContext) -> str:
    """The tokenizer that goes with the artifact (stored like an artifact path: relative to the root)."""
    from pipeline.artifact import stored
    f = Path(ctx.shared["hf_folder"]) / "tokenizer.json" if "hf_folder" in ctx.shared else None
    return stored(f) if f is not None and f.exists() else ""


def generation_info(ctx: ExportContext, convention: str, prefill: list[str], decode: str,
                    signatures: dict, **extra) -> dict:
    """The record's `info["generation"]`: everything the harness needs to run the artifact."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown cache convention {convention!r}")
    hf = ctx.shared.get("hf_folder")
    from pipeline.artifact import stored
    return {"convention": convention, "convention_text": CONVENTIONS[convention],
            "entry_points": {"prefill": prefill, "decode": decode}, "signatures": signatures,
            **ctx.spec.lm.facts(), "tokenizer": tokenizer_file(ctx), "hf_folder": stored(hf) if hf else "",
            **extra}


def tensor(shape, dtype: str) -> dict:
    """One entry of a signature: shape (ints, or a name for a dynamic dimension) and dtype."""
    return {"shape": [d if isinstance(d, str) else int(d) for d in shape], "dtype": str(dtype)}


def tflite_signatures(path: Path) -> dict:
    """A .tflite's signatures as written: {name: {"inputs": {tensor: spec}, "outputs": {...}}}
    (a dynamic dimension, -1 in shape_signature, as "dynamic")."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    out = {}
    for name in it.get_signature_list():
        r = it.get_signature_runner(name)

        def spec(d):
            return tensor([s if s >= 0 else "dynamic" for s in d.get("shape_signature", d["shape"])],
                          d["dtype"].__name__)
        out[name] = {"inputs": {k: spec(d) for k, d in sorted(r.get_input_details().items())},
                     "outputs": {k: spec(d) for k, d in sorted(r.get_output_details().items())}}
    return out
