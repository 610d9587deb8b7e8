"""The Llama-shaped decoder as PyTorch and Keras twins, and the weight transfer between them.

PyTorch: `transformers.LlamaForCausalLM` itself (RMSNorm, RoPE, grouped-query attention, SwiGLU, no
biases, untied head), from `LMConfig.llama_config()`: the class every LLM toolchain here accepts, and the
one a user's Hugging Face folder loads into.

Keras: the same network written in Keras 3, one layer per torch module, named like it
(`model.layers.0.self_attn.q_proj` -> `model_layers_0_self_attn_q_proj`), so `transfer_by_name` copies
every weight. The network is written ONCE, in `keras_forward`: the functional training model and the
exported cache-in/cache-out TFLite step (export/llm_tflite_paths.py) both call it, with their own
`attend` (causal attention over the sequence, or attention over a KV cache).

Math as transformers' Llama: RMSNorm in float32 (`x * rsqrt(mean(x^2) + eps) * w`; Keras'
RMSNormalization is that formula), RoPE with the rotate-half layout (inv_freq = theta^(-2i/D), cos/sin of
cat(freqs, freqs)), scores scaled by D^-0.5, softmax in float32, kv heads repeated to the query heads
(`repeat_kv`: query head h reads kv head h // (heads / kv_heads)).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.lm_config import LMConfig
from models.transfer import transfer_by_name

INIT_STD = 0.02   # transformers' initializer_range: both twins start from the same distribution


def build_torch(cfg: LMConfig, seed: int = 0):
    """A seeded, randomly initialised `LlamaForCausalLM` in eval mode."""
    import torch
    from models.lm_hf import transformers
    tf = transformers()
    torch.manual_seed(seed)
    return tf.LlamaForCausalLM(cfg.llama_config()).eval()


# ---- Keras -------------------------------------------------------------------------------------------

def _units(name: str, cfg: LMConfig) -> int:
    tail = "_".join(name.split("_")[-2:])   # q_proj, ..., down_proj, lm_head
    return {"q_proj": cfg.heads * cfg.dim, "k_proj": cfg.kv_heads * cfg.dim, "v_proj": cfg.kv_heads * cfg.dim,
            "o_proj": cfg.hidden, "gate_proj": cfg.ffn, "up_proj": cfg.ffn, "down_proj": cfg.hidden,
            "lm_head": cfg.vocab}[tail]


def _make_layer(name: str, cfg: LMConfig, seed: int):
    """The Keras layer a torch module name stands for (the one place that says which kind is which)."""
    import keras
    from keras import layers
    init = keras.initializers.RandomNormal(stddev=INIT_STD, seed=seed)
    if name.endswith("embed_tokens"):
        return layers.Embedding(cfg.vocab, cfg.hidden, embeddings_initializer=init, name=name)
    if name.endswith("norm"):
        return layers.RMSNormalization(epsilon=cfg.rms_eps, name=name)
    return layers.Dense(_units(name, cfg), use_bias=False, kernel_initializer=init, name=name)


def rope(positions, cfg: LMConfig):
    """cos, sin [T, D] for int positions [T] (transformers' LlamaRotaryEmbedding, float32)."""
    from keras import ops
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.dim, 2, dtype=np.float32) / cfg.dim))
    freqs = ops.cast(positions, "float32")[:, None] * ops.convert_to_tensor(inv[None, :])
    emb = ops.concatenate([freqs, freqs], axis=-1)
    return ops.cos(emb), ops.sin(emb)


def _rotate(x, cos, sin):
    from keras import ops
    half = x.shape[-1] // 2
    rot = ops.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


def heads(x, n: int, dim: int):
    """[B, T, n*dim] -> [B, n, T, dim] (T static: the training window, a prefill length, or 1)."""
    from keras import ops
    return ops.transpose(ops.reshape(x, (-1, x.shape[1], n, dim)), (0, 2, 1, 3))


def attention(q, k, v, mask, cfg: LMConfig):
    """q [B,H,T,D], k/v [B,KV,S,D], additive mask broadcasting to [B,H,T,S] -> [B,H,T,D]."""
    from keras import ops
    groups = cfg.heads // cfg.kv_heads
    if groups > 1:
        k, v = ops.repeat(k, groups, axis=1), ops.repeat(v, groups, axis=1)
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (cfg.dim ** -0.5) + mask
    return ops.matmul(ops.softmax(scores, axis=-1), v)


# attend(layer index, q [B,H,T,D] rotated, k [B,KV,T,D] rotated, v [B,KV,T,D]) -> [B,H,T,D]
Attend = Callable[[int, object, object, object], object]


def keras_forward(layer: Callable[[str], object], cfg: LMConfig, tokens, positions, attend: Attend):
    """THE Keras network: token ids [B, T] at `positions` [T] -> logits [B, T, vocab].
    `layer(name)` gives the layer of a torch module name; `attend` says what the keys are."""
    from keras import ops
    x = layer("model_embed_tokens")(tokens)
    cos, sin = rope(positions, cfg)
    for i in range(cfg.layers):
        p = f"model_layers_{i}_"
        h = layer(p + "input_layernorm")(x)
        q = _rotate(heads(layer(p + "self_attn_q_proj")(h), cfg.heads, cfg.dim), cos, sin)
        k = _rotate(heads(layer(p + "self_attn_k_proj")(h), cfg.kv_heads, cfg.dim), cos, sin)
        v = heads(layer(p + "self_attn_v_proj")(h), cfg.kv_heads, cfg.dim)
        a = ops.transpose(attend(i, q, k, v), (0, 2, 1, 3))
        a = ops.reshape(a, (-1, a.shape[1], cfg.heads * cfg.dim))
        x = x + layer(p + "self_attn_o_proj")(a)
        h = layer(p + "post_attention_layernorm")(x)
        x = x + layer(p + "mlp_down_proj")(ops.silu(layer(p + "mlp_gate_proj")(h)) * layer(p + "mlp_up_proj")(h))
    return layer("lm_head")(layer("model_norm")(x))


MASKED = -1e9   # additive mask value of a position not attended to (exp underflows to 0 in float32)


def causal_mask(t: int) -> np.ndarray:
    """Additive causal mask [T, T]: 0 on and below the diagonal, MASKED above."""
    return np.triu(np.full((t, t), MASKED, dtype=np.float32), 1)


def build_keras(cfg: LMConfig, seed: int = 0):
    """The Keras twin: token ids int32 [B, context] -> logits [B, context, vocab], causal. The window is
    static (the training and evaluation windows are `context` long); the exported step calls
    `keras_forward` on the same layers with its own lengths."""
    import keras
    from keras import ops
    made: dict[str, object] = {}

    def layer(name: str):
        if name not in made:
            made[name] = _make_layer(name, cfg, seed + len(made))
        return made[name]

    tokens = keras.Input((cfg.context,), dtype="int32", name="tokens")
    mask = ops.convert_to_tensor(causal_mask(cfg.context))
    logits = keras_forward(layer, cfg, tokens, np.arange(cfg.context, dtype=np.int32),
                           lambda i, q, k, v: attention(q, k, v, mask, cfg))
    return keras.Model(tokens, logits, name="llama")


def keras_logits(model, cfg: LMConfig, tokens: np.ndarray) -> np.ndarray:
    """The Keras twin (`build_keras`, trained weights loaded) on token ids [B, T] of any T <= context:
    logits [B, T, vocab], causal, no cache (the functional model itself takes windows of `context`)."""
    t = tokens.shape[1]
    mask = causal_mask(t)
    return np.asarray(keras_forward(model.get_layer, cfg, np.asarray(tokens, np.int32), np.arange(t, dtype=np.int32),
                                    lambda i, q, k, v: attention(q, k, v, mask, cfg)))


def _rmsnorm(mod, layer) -> list[np.ndarray]:
    if abs(layer.epsilon - mod.variance_epsilon) > 1e-12:
        raise ValueError(f"{layer.name}: epsilon {layer.epsilon} != torch eps {mod.variance_epsilon}")
    return [mod.weight.detach().cpu().numpy()]


def transfer(torch_model, keras_model) -> list[str]:
    """Copy the LlamaForCausalLM's weights into the Keras twin, by name (every layer or an error)."""
    from models.lm_hf import transformers
    rms = transformers().models.llama.modeling_llama.LlamaRMSNorm
    return transfer_by_name(torch_model, keras_model, extra={rms: _rmsnorm})
