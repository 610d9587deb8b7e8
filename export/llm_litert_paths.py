"""Decoder LM -> LiteRT `.tflite` with litert-torch's generative exporter: fp32 and dynamic int8.

    python -m export.run --model tiny_lm --paths litert_llm_fp32,litert_llm_dynamic_int8

`litert_torch.generative.export_hf.export` takes the model's Hugging Face folder (the zoo twin's
`train/hf/`, or a user's folder: the same call) and writes one `.tflite` with signatures
`prefill_<N>` (one per `LMConfig.prefills`) and `decode` over a cache of `context` positions, in the
`cache_io` convention (export/llm_common.py): tokens int32, input_pos int32, an additive mask
[1, 1, N, C], `kv_cache_k_<i>` [1, kv, C, D] and `kv_cache_v_<i>` transposed [1, kv, D, C] in and out;
prefill returns only the caches, decode the caches and `logits` [1, 1, vocab]. The signatures in the
record are read back from the written file.

int8: the exporter's own default recipe (`dynamic_wi8_afp32`: int8 per-channel weights, float
activations quantized at run time by the hybrid kernels), applied with its own `quantize_model` to the
fp32 file the fp32 path wrote for this twin (`ctx.shared`), as `export_hf` does after converting:
the conversion is paid once.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from export.llm_common import generation_info, hf_folder, tflite_signatures
from export.registry import GENERATIVE_TASKS, ExportContext, Unsupported, register

RECIPE = "dynamic_wi8_afp32"


def _fp32_bytes(ctx: ExportContext) -> bytes:
    """The fp32 .tflite of this twin: converted once per worker, kept for the int8 path."""
    if "litert_llm_fp32" not in ctx.shared:
        from models.lm_hf import transformers
        transformers()   # Hub kernels off before litert-torch imports transformers' models
        from litert_torch.generative.export_hf.export import export
        lm, folder = ctx.spec.lm, hf_folder(ctx)
        if not (folder / "tokenizer.json").exists() and not (folder / "tokenizer.model").exists():
            raise Unsupported(f"litert-torch's export_hf loads the tokenizer beside the model: none in {folder}")
        with tempfile.TemporaryDirectory(prefix="litert-llm-") as out, ctx.phase("convert"):
            export(model=str(folder), output_dir=out, prefill_lengths=list(lm.prefills),
                   cache_length=lm.context, quantization_recipe="none", bundle_litert_lm=False,
                   keep_temporary_files=True)   # else model.tflite is deleted with its work dir: `out` is ours
            ctx.shared["litert_llm_fp32"] = (Path(out) / "model.tflite").read_bytes()
    return ctx.shared["litert_llm_fp32"]


def _info(ctx: ExportContext, **extra) -> dict:
    sigs = tflite_signatures(ctx.out)
    prefill = sorted((s for s in sigs if s.startswith("prefill_")), key=lambda s: int(s.split("_")[1]))
    return {"generation": generation_info(ctx, "cache_io", prefill=prefill, decode="decode", signatures=sigs,
                                          prefill_logits=False, **extra)}


@register("litert_llm_fp32", input_kind="torch", format="tflite", quantization="fp32", tasks=GENERATIVE_TASKS)
def litert_llm_fp32(ctx: ExportContext) -> dict:
    """litert-torch generative export_hf: prefill_<N> + decode signatures, cache in/out, fp32."""
    Path(ctx.out).write_bytes(_fp32_bytes(ctx))
    return _info(ctx)


@register("litert_llm_dynamic_int8", input_kind="torch", format="tflite", quantization="dynamic_int8",
          tasks=GENERATIVE_TASKS)
def litert_llm_dynamic_int8(ctx: ExportContext) -> dict:
    """litert-torch generative export_hf's dynamic_wi8_afp32 recipe (int8 weights, hybrid kernels)."""
    from litert_torch.generative.export_hf.core.export_lib import quantize_model
    with tempfile.TemporaryDirectory(prefix="litert-q-") as tmp:
        fp32 = Path(tmp) / "model.tflite"
        fp32.write_bytes(_fp32_bytes(ctx))
        with ctx.phase("quantize"):
            shutil.move(quantize_model(str(fp32), RECIPE), ctx.out)
    return _info(ctx, quantization=f"litert-torch recipe {RECIPE}")
