"""Generative tier: a Llama-shaped decoder LM (2 layers, hidden 128, 4 heads / 2 kv heads, SwiGLU 352,
byte-level BPE of 1024 tokens, context 128), trained here on Python's help topics.

    make bench-mobile MODELS=tier:llm

PyTorch twin: `transformers.LlamaForCausalLM` (0.63M parameters); Keras twin: the same network in
Keras (`models/lm_arch.py`); the transfer twin carries the PyTorch weights to Keras. Text and tokenizer:
`models/lm_text.py` (pydoc_data.topics, every 10th topic held out: ~143k training / ~16k held-out
tokens). Sizes chosen for the budget (`make bench-mobile MODELS=tier:llm` cold <= 10 min on 2 cores,
training of both twins included): every width is a multiple of 32, the group size of the 8da4w
quantization. Export contract: cache of 128 positions, dynamic prefill of 1..64 tokens, fixed
prefill signature of 32 tokens.
"""
from __future__ import annotations

from models import lm_arch
from models.lm_config import LMConfig
from models.spec import ModelSpec, Tolerances, TrainConfig

LM = LMConfig(vocab=1024, hidden=128, layers=2, heads=4, kv_heads=2, ffn=352, context=128,
              prefill_max=64, prefill_lengths=(32,))
SEED = 0


def load_data(seed: int):
    from models.lm_text import load
    return load(LM.vocab, LM.context)


SPEC = ModelSpec(
    name="tiny_lm",
    description="Llama-shaped decoder LM (2 layers, hidden 128, 4/2 heads GQA, SwiGLU, RoPE, RMSNorm; "
                "byte-level BPE 1024, context 128) trained on Python's help topics",
    task="generation",
    input_shape=(LM.context,),
    num_outputs=LM.vocab,
    load_data=load_data,
    build_torch=lambda: lm_arch.build_torch(LM, SEED),
    build_keras=lambda: lm_arch.build_keras(LM, SEED),
    transfer=lm_arch.transfer,
    keras_layout="same",
    train=TrainConfig(epochs=4, batch_size=16, lr=3e-3, threads=1),
    tolerances=Tolerances(transfer_atol=1e-4),
    calibration_samples=16,
    tier="llm",
    build_cost_s=240,
    lm=LM,
)
