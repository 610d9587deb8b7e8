"""Decoder LM -> ONNX with past/present key-values for ONNX Runtime: fp32 and dynamic int8.

    python -m export.run --model tiny_lm --paths onnx_llm_fp32,onnx_llm_dynamic_int8

One graph serves prefill and decode (the `past_present` convention, Optimum's "decoder with past"):
inputs `input_ids` int64 [1, S] and, per layer i, `past_key_<i>` / `past_value_<i>` float32
[1, kv, P, D]; outputs `logits` [1, S, vocab] and `present_key_<i>` / `present_value_<i>` [1, kv, P+S, D].
Prefill passes P = 0 (ONNX Runtime accepts a zero-length past), decode S = 1 and the last presents. The
positions are P .. P+S-1 (transformers derives them from the past's length). S and P are dynamic
dimensions: the graph has no upper bound, so `context` (P + S <= context) is the caller's to keep.

int8: `onnxruntime.quantization.quantize_dynamic` (int8 weights, activations quantized per call) of
the fp32 file exported for the same twin (`ctx.shared`). Not static QDQ: an LM's activation ranges
depend on the prompt and the position, so calibration on a few windows fits none of them well.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from export.llm_common import generation_info, tensor
from export.registry import GENERATIVE_TASKS, ExportContext, register


def _names(layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
    return ["input_ids", *past], ["logits", *[p.replace("past_", "present_") for p in past]]


def _wrapper(model, layers: int):
    import torch
    from models.lm_hf import transformers
    DynamicCache = transformers().DynamicCache

    class PastPresent(torch.nn.Module):
        """(input_ids, *past) -> (logits, *present): the cache as plain tensors in and out."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, *past):
            cache = DynamicCache(config=self.model.config)
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
            kv = out.past_key_values
            return (out.logits, *[t for i in range(layers) for t in (kv.layers[i].keys, kv.layers[i].values)])
    return PastPresent().eval()


def _export_fp32(ctx: ExportContext, dest: Path) -> None:
    """The twin's fp32 file at `dest`, exported once per worker (the int8 path quantizes the same bytes)."""
    if "onnx_llm_fp32" not in ctx.shared:
        import torch
        lm = ctx.spec.lm
        seq = torch.export.Dim("seq", min=1, max=lm.context)
        past = torch.export.Dim("past", min=0, max=lm.context)
        ids = torch.zeros(1, 4, dtype=torch.long)
        kv = [torch.zeros(1, lm.kv_heads, 3, lm.dim) for _ in range(2 * lm.layers)]
        inputs, outputs = _names(lm.layers)
        with torch.no_grad():
            torch.onnx.export(_wrapper(ctx.model, lm.layers), (ids, *kv), str(dest), dynamo=True,
                              external_data=False, input_names=inputs, output_names=outputs,
                              dynamic_shapes={"input_ids": {1: seq}, "past": ({2: past},) * (2 * lm.layers)},
                              verbose=False)
        ctx.shared["onnx_llm_fp32"] = Path(dest).read_bytes()
    else:
        Path(dest).write_bytes(ctx.shared["onnx_llm_fp32"])


def _info(ctx: ExportContext, **extra) -> dict:
    lm = ctx.spec.lm
    inputs, outputs = _names(lm.layers)
    kv_in, kv_out = tensor([1, lm.kv_heads, "past", lm.dim], "float32"), tensor([1, lm.kv_heads, "past+seq", lm.dim], "float32")
    sig = {"inputs": {"input_ids": tensor([1, "seq"], "int64"), **{n: kv_in for n in inputs[1:]}},
           "outputs": {"logits": tensor([1, "seq", lm.vocab], "float32"), **{n: kv_out for n in outputs[1:]}}}
    return {"generation": generation_info(ctx, "past_present", prefill=["main"], decode="main",
                                          signatures={"main": sig}, dynamic_dims={"seq": [1, None], "past": [0, None]},
                                          **extra)}


@register("onnx_llm_fp32", input_kind="torch", format="onnx", quantization="fp32", tasks=GENERATIVE_TASKS)
def onnx_llm_fp32(ctx: ExportContext) -> dict:
    """torch.onnx.export(dynamo=True) of the LM with past/present key-values (one graph, dynamic lengths)."""
    with ctx.phase("export"):
        _export_fp32(ctx, ctx.out)
    return _info(ctx)


@register("onnx_llm_dynamic_int8", input_kind="torch", format="onnx", quantization="dynamic_int8",
          tasks=GENERATIVE_TASKS)
def onnx_llm_dynamic_int8(ctx: ExportContext) -> dict:
    """ONNX Runtime dynamic quantization (int8 weights, int8 activations computed per call)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory(prefix="onnx-llm-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        with ctx.phase("export"):
            _export_fp32(ctx, fp32)
        with ctx.phase("quantize"):
            quantize_dynamic(str(fp32), str(ctx.out), weight_type=QuantType.QInt8)
    return _info(ctx, quantization="onnxruntime quantize_dynamic, QInt8 weights")
