"""Decoder LM -> Core AI `.aimodel` (iOS/macOS 27) with the KV cache as state: fp32, int8 and int4 weights.

    python -m export.run --model tiny_lm --paths coreai_llm_fp32,coreai_llm_w8,coreai_llm_w4

The same static-cache wrapper as the ExecuTorch paths (transformers' `TorchExportableModuleWithStaticCache`),
torch.export'ed once per entry point and staged into one `coreai_torch.TorchConverter` as two functions,
`prefill_<N>` (one per `LMConfig.prefills`) and `decode`. Its mutable buffers become Core AI *state*
(the `coreai_state` convention, export/llm_common.py): the caller allocates each state array once
(zeros; names, shapes, dtypes in the record's signatures, read back from the file: `b_key_cache_<i>`,
`b_value_cache_<i>` [1, kv, C, D] float32 and `b_cumulative_length_<i>` int32 scalars), passes the same
dict to every call (`await fn(inputs, state=...)`) and the runtime updates it in place. Inputs
`input_ids` int32 [1, N], `cache_position` int32 [N]; output `logits` float32 [1, N, vocab] (prefill too).
Core AI's Linux CPU runtime runs it here: trained tiny_lm, a 20-token prompt padded to prefill_32 then 10
greedy decode steps gave the PyTorch model's tokens, max |logit diff| 6.2e-6; a second sequence from
position 0 on the same state arrays too.

w8 / w4: coreai-opt's `Quantizer` (eager, weight-only) on every `nn.Linear` (attention, MLP, lm_head; the
token embedding and the RMSNorm scales stay float: coreai-opt has no axis default for a norm's weight and
refuses the global presets on this model), before wrapping: int8 per output channel, int4 per block of
32 input channels (the LLM-usual int4 layout, as the .pte's 8da4w groups). Dequantized at load: float compute.

Not here, and why (checked with coreai-torch 0.4.3): a prefill with a dynamic length (torch.export Dim,
as the .pte has) fails in the converter (`ValueError: add_<n>[0]: rank 1 vs 0`, the cache-length update
on a symbolic size), so prefill lengths are fixed, as litert-torch's. `strict=False` export fails in
`run_decompositions` ("expected compiled_fn to be GraphModule"), the ExecuTorch paths' trap: strict it is.
"""
from __future__ import annotations

import copy
import dataclasses

from export.llm_common import generation_info, tensor
from export.llm_executorch_paths import _static_cache_model
from export.registry import GENERATIVE_TASKS, ExportContext, Unsupported, register

BLOCK = 32   # int4 weight blocks along the input channels (every Linear's input width is a multiple)
COMPRESSION = {
    "w8": {"dtype": "int8", "granularity": "per_channel", "qscheme": "symmetric", "modules": "nn.Linear",
           "preset": "ModuleQuantizerConfig.presets.w8", "text": "int8 weights per output channel on every Linear"},
    "w4": {"dtype": "int4", "granularity": "per_block", "block_size": BLOCK, "qscheme": "symmetric",
           "modules": "nn.Linear", "preset": f"ModuleQuantizerConfig.presets.w4_per_block(block_size={BLOCK})",
           "text": f"int4 weights per block of {BLOCK} input channels on every Linear"},
}


def coreai_signatures(path) -> dict:
    """An .aimodel's functions as written: inputs, outputs and states, each "NDArray (Float32, 1 × 2)"
    of the asset summary read as {"shape": [1, 2], "dtype": "float32"}."""
    from coreai.authoring import AIModelAsset

    def spec(text: str) -> dict:
        dtype, _, dims = text[text.index("(") + 1:text.rindex(")")].partition(",")
        return tensor([int(d) for d in dims.replace("×", " ").split()], dtype.strip().lower())
    summary = AIModelAsset.load(path).summary()
    return {fn: {part: {name: spec(t) for name, t in getattr(summary, f"function_{part}")(fn)}
                 for part in ("inputs", "outputs", "states")} for fn in summary.function_names}


def _compressed_twin(ctx: ExportContext, how: str):
    """A copy of the PyTorch twin with coreai-opt's weight-only quantization on its Linear layers."""
    import coreai_opt
    import torch
    from coreai_opt.quantization import ExecutionMode, Quantizer, QuantizerConfig
    from coreai_opt.quantization.config.quantization_config import ModuleQuantizerConfig
    presets = ModuleQuantizerConfig.presets
    linear = presets.w8() if how == "w8" else presets.w4_per_block(block_size=BLOCK)
    model = copy.deepcopy(ctx.model).eval()
    cfg = QuantizerConfig(global_config=None, module_type_configs={"torch.nn.modules.linear.Linear": linear},
                          execution_mode=ExecutionMode.EAGER)
    with ctx.phase("quantize"), torch.no_grad():
        q = Quantizer(model, cfg)
        q.prepare((torch.zeros(1, min(8, ctx.spec.lm.context), dtype=torch.long),))
        return q.finalize(backend=coreai_opt.ExportBackend.CoreAI)


def _coreai_llm(ctx: ExportContext, how: str = "") -> dict:
    import coreai_torch
    import torch
    lm = ctx.spec.lm
    if how:   # the same context (its phase times), the compressed twin
        ctx = dataclasses.replace(ctx, model=_compressed_twin(ctx, how))
    wrapper = _static_cache_model(ctx, quantize=False)
    lengths = {f"prefill_{n}": n for n in lm.prefills} | {"decode": 1}
    conv = coreai_torch.TorchConverter()
    for name, n in lengths.items():
        with ctx.phase("export"), torch.no_grad():
            ep = torch.export.export(wrapper, (), {"input_ids": torch.zeros(1, n, dtype=torch.long),
                                                   "cache_position": torch.arange(n)}, strict=True)
        with ctx.phase("decompose"):
            ep = ep.run_decompositions(coreai_torch.get_decomp_table())
        conv.add_exported_program(ep, input_names=["input_ids", "cache_position"], output_names=["logits"],
                                  entrypoint_name=name)
    with ctx.phase("convert"):
        prog = conv.to_coreai()
    with ctx.phase("serialize"):
        prog.save_asset(ctx.out)
    sigs = coreai_signatures(ctx.out)
    from pipeline.filecheck import coreai
    info = {**coreai.facts(ctx.out), "input_layout": "same",
            "generation": generation_info(ctx, "coreai_state", prefill=[s for s in sigs if s != "decode"],
                                          decode="decode", signatures=sigs, prefill_logits=True,
                                          positions="cache_position: contiguous, from 0 for a new sequence "
                                                    "(or fresh zero state), < context")}
    if how:
        if not info["coreai"]["compressed_weight_share"]:
            raise Unsupported(f"coreai-opt compressed no weight of this LM ({how}): it would ship float weights "
                              "under a compressed name")
        info["compression"] = COMPRESSION[how]
        info["generation"]["quantization"] = COMPRESSION[how]["text"] + " (dequantized at load: float compute)"
    return info


@register("coreai_llm_fp32", input_kind="torch", format="aimodel", quantization="fp32", tasks=GENERATIVE_TASKS)
def coreai_llm_fp32(ctx: ExportContext) -> dict:
    """Core AI .aimodel, KV cache as state: prefill_<N> + decode functions (coreai-torch), fp32."""
    return _coreai_llm(ctx)


@register("coreai_llm_w8", input_kind="torch", format="aimodel", quantization="int8_weights",
          tasks=GENERATIVE_TASKS)
def coreai_llm_w8(ctx: ExportContext) -> dict:
    """Core AI .aimodel, KV cache as state, int8 weights per channel on every Linear (coreai-opt)."""
    return _coreai_llm(ctx, "w8")


@register("coreai_llm_w4", input_kind="torch", format="aimodel", quantization="int4_weights",
          tasks=GENERATIVE_TASKS)
def coreai_llm_w4(ctx: ExportContext) -> dict:
    """Core AI .aimodel, KV cache as state, int4 weights per block of 32 on every Linear (coreai-opt)."""
    return _coreai_llm(ctx, "w4")
