"""Phone tier: a Llama-shaped decoder LM of phone size (8 layers, hidden 512, 8 heads / 2 kv heads,
SwiGLU 1408, byte-level BPE of 8192 tokens, context 512): 30.9M parameters, seeded.

    make bench-mobile MODELS=phone_lm          # or tier:phone (every phone-size model)

For cost figures: size, time to first token, decode tokens/s, memory and instructions per token of a
model the size of the small LMs phones run (tens of millions of parameters; SmolLM-135M is 4x this),
through the same export paths as `tiny_lm`. Weights "calibrated", which for a decoder means seeded only
(RMSNorm has no running statistics to re-estimate; 30.9M parameters do not train on 2 cores in any
budget): perplexity is that of a random model (about the vocabulary size) and greedy tokens of
quantized artifacts flip on near-tied logits, so parity is judged on logits. Same text and tokenizer
recipe as tiny_lm (`models/lm_text.py`), vocabulary 8192.
"""
from __future__ import annotations

from models import lm_arch
from models.lm_config import LMConfig
from models.spec import ModelSpec, TrainConfig

LM = LMConfig(vocab=8192, hidden=512, layers=8, heads=8, kv_heads=2, ffn=1408, context=512,
              prefill_max=256, prefill_lengths=(128,))
SEED = 0


def load_data(seed: int):
    from models.lm_text import load
    return load(LM.vocab, LM.context)


SPEC = ModelSpec(
    name="phone_lm",
    description="Llama-shaped decoder LM of phone size (8 layers, hidden 512, 8/2 heads GQA, SwiGLU 1408; "
                "BPE 8192, context 512, 30.9M parameters), seeded weights",
    task="generation",
    input_shape=(LM.context,),
    num_outputs=LM.vocab,
    load_data=load_data,
    build_torch=lambda: lm_arch.build_torch(LM, SEED),
    build_keras=lambda: lm_arch.build_keras(LM, SEED),
    transfer=lm_arch.transfer,
    keras_layout="same",
    train=TrainConfig(epochs=1, batch_size=4),   # calibrated: nothing trains (see the docstring)
    calibration_samples=8,
    eval_samples=4,
    tier="phone",
    weights="calibrated",
    build_cost_s=900,
    lm=LM,
)
