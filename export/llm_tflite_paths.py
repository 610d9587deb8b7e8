"""Keras decoder LM -> TFLite with the KV cache as state in and out: fp32 and dynamic-range int8.

    python -m export.run --model tiny_lm --paths tflite_llm_fp32,tflite_llm_dynamic_int8

A `tf.Module` with one `tf.function` per signature, saved as a SavedModel and converted with builtin
ops only. The signatures mirror litert-torch's generative export exactly (the `cache_io` convention,
export/llm_common.py): `prefill_<N>` per `LMConfig.prefills` and `decode`, inputs `tokens` int32
[1, N], `input_pos` int32 [N], `mask` float32 [1, 1, N, C] (additive), `kv_cache_k_<i>` [1, kv, C, D],
`kv_cache_v_<i>` [1, kv, D, C] (transposed, as litert-torch stores V); prefill returns the caches,
decode the caches and `logits` [1, 1, vocab]. So one harness adapter runs the PyTorch twin's LiteRT file
and the Keras twin's, and the two stacks are compared on the same signatures.

The network is `models/lm_arch.keras_forward` (the one the Keras twin trains with) with an `attend`
that writes the new keys/values into the cache at input_pos[0] (a contiguous slice:
DYNAMIC_UPDATE_SLICE, the op litert-torch emits too) and attends over the whole cache under the mask.
"""
from __future__ import annotations

import tempfile

from export.llm_common import generation_info, tflite_signatures
from export.registry import GENERATIVE_TASKS, ExportContext, register


def _cache_names(layers: int) -> list[str]:
    return [f"kv_cache_{kv}_{i}" for i in range(layers) for kv in ("k", "v")]


def _module(model, lm):
    """The tf.Module whose functions are the signatures: {name: concrete function}."""
    import tensorflow as tf
    from keras import ops

    from models.lm_arch import attention, keras_forward
    names = _cache_names(lm.layers)

    def step(tokens, input_pos, mask, caches: dict, with_logits: bool) -> dict:
        start = input_pos[0]
        zero = tf.zeros((), tf.int32)
        new: dict = {}

        def attend(i, q, k, v):   # keras.ops.slice_update is XLA's dynamic_update_slice on TF
            kc = ops.slice_update(caches[f"kv_cache_k_{i}"], [zero, zero, start, zero], k)
            vc = ops.slice_update(caches[f"kv_cache_v_{i}"], [zero, zero, zero, start],
                                  tf.transpose(v, (0, 1, 3, 2)))
            new[f"kv_cache_k_{i}"], new[f"kv_cache_v_{i}"] = kc, vc
            return attention(q, kc, tf.transpose(vc, (0, 1, 3, 2)), mask, lm)
        logits = keras_forward(model.get_layer, lm, tokens, input_pos, attend)
        out = {n: new[n] for n in names}
        if with_logits:
            out["logits"] = logits
        return out

    def signature(n: int, with_logits: bool):
        specs = [tf.TensorSpec([1, n], tf.int32, "tokens"), tf.TensorSpec([n], tf.int32, "input_pos"),
                 tf.TensorSpec([1, 1, n, lm.context], tf.float32, "mask")]
        specs += [tf.TensorSpec([1, lm.kv_heads, lm.context, lm.dim] if "_k_" in c else
                                [1, lm.kv_heads, lm.dim, lm.context], tf.float32, c) for c in names]

        def fn(tokens, input_pos, mask, *caches):
            return step(tokens, input_pos, mask, dict(zip(names, caches)), with_logits)
        return tf.function(fn, input_signature=specs).get_concrete_function()

    module = tf.Module()
    module.model = model
    # the tf.Variables under the Keras 3 ones, tracked so the SavedModel holds them and the converter
    # folds them into constants: untracked, the file kept VAR_HANDLE/READ_VARIABLE ops and no weights
    module.weights = [w.value for w in model.weights]
    sigs = {f"prefill_{n}": signature(n, with_logits=False) for n in lm.prefills}
    sigs["decode"] = signature(1, with_logits=True)
    return module, sigs


def _convert(ctx: ExportContext, dynamic_int8: bool) -> dict:
    import tensorflow as tf
    lm = ctx.spec.lm
    with tempfile.TemporaryDirectory(prefix="tflite-llm-") as tmp:
        with ctx.phase("trace"):
            module, sigs = _module(ctx.model, lm)
            tf.saved_model.save(module, tmp, signatures=sigs)
        with ctx.phase("convert"):
            conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(sigs))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if dynamic_int8:
                conv.optimizations = [tf.lite.Optimize.DEFAULT]   # no representative data: dynamic range
            ctx.out.write_bytes(conv.convert())
    sigs = tflite_signatures(ctx.out)
    prefill = sorted((s for s in sigs if s.startswith("prefill_")), key=lambda s: int(s.split("_")[1]))
    extra = {"quantization": "TFLite dynamic range: int8 weights, hybrid kernels"} if dynamic_int8 else {}
    return {"input_layout": "same",
            "generation": generation_info(ctx, "cache_io", prefill=prefill, decode="decode", signatures=sigs,
                                          prefill_logits=False, **extra)}


@register("tflite_llm_fp32", input_kind="keras", format="tflite", quantization="fp32", tasks=GENERATIVE_TASKS)
def tflite_llm_fp32(ctx: ExportContext) -> dict:
    """TFLite from the Keras LM: prefill_<N> + decode signatures, KV cache in/out (litert-torch's layout)."""
    return _convert(ctx, dynamic_int8=False)


@register("tflite_llm_dynamic_int8", input_kind="keras", format="tflite", quantization="dynamic_int8",
          sources=("keras_tw",), tasks=GENERATIVE_TASKS)
def tflite_llm_dynamic_int8(ctx: ExportContext) -> dict:
    """TFLite dynamic range (int8 weights) of the transfer twin: the PyTorch weights, TensorFlow's stack."""
    return _convert(ctx, dynamic_int8=True)
