"""Decoder LM -> ExecuTorch `.pte` (XNNPACK) with a static KV cache: fp32 and 8da4w.

    python -m export.run --model tiny_lm --paths et_llm_xnnpack_fp32,et_llm_xnnpack_8da4w

Flow (why this one): transformers' `TorchExportableModuleWithStaticCache` wraps the `LlamaForCausalLM`
itself, so the zoo twin and a user's Hugging Face folder export through the same code. ExecuTorch's own
LLM flow (`executorch.extension.llm.export` / examples' `export_llama`) rebuilds the network from its own
`llama_transformer.py` and needs a Meta-format checkpoint plus a params JSON (its HF converters import
`torchtune`, not installed), i.e. a second definition of the model to keep equal to the first.

One method, as ExecuTorch's own LLM runner expects: `forward(input_ids int64[1, S], cache_position
int64[S]) -> logits float32[1, S, vocab]`, S dynamic in [1, prefill_max], serves the prefill (S tokens)
and the decode (S = 1); the runtime enforces the upper bound (a longer input is an error). Plus the
constant methods that runner reads (get_max_seq_len, get_max_context_len, get_vocab_size, get_bos_id,
get_eos_ids, use_kv_cache, enable_dynamic_shape), so the `.pte` runs under
`executorch.extension.llm.runner` too. A sequence starts again by calling with positions from 0 (the
wrapper resets each layer's cache length to cache_position[0]).
Not a second, static `decode` method sharing the cache (`MemoryPlanningPass(share_mutable_buffers=True)`
does that, and it ran correctly): it doubled the lowering time (the costliest phase: 8da4w lowered for
~20 min wall under load ~16) and decoded no faster (tiny_lm fp32: 0.77-0.87 vs 0.79-0.82 ms/token,
8da4w 1.07-1.10 vs 1.07-1.13, alternating runs in one process, under load).

Traps (docs/generative.md): export under `torch.no_grad()` and `strict=True` (non-strict lifts the cache
buffers as duplicate constants and lowering fails), `EdgeCompileConfig(_check_ir_validity=False)`.
8da4w: torchao `Int8DynamicActivationIntxWeightConfig(int4, PerGroup(32))` on every Linear, before wrapping.
"""
from __future__ import annotations

import copy

from export.llm_common import generation_info, tensor
from export.registry import GENERATIVE_TASKS, ExportContext, register

GROUP_SIZE = 32   # int4 weight groups: every Linear's input width must be a multiple


def _static_cache_model(ctx: ExportContext, quantize: bool):
    import torch
    from models.lm_hf import transformers
    tf = transformers()
    model = copy.deepcopy(ctx.model).eval()   # the twin is shared by every path of this worker
    if quantize:
        from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
        from torchao.quantization.granularity import PerGroup
        with ctx.phase("quantize"):
            quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                                   weight_granularity=PerGroup(GROUP_SIZE)),
                      filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear))
    lm = ctx.spec.lm
    model.generation_config = tf.GenerationConfig(
        use_cache=True, cache_implementation="static", bos_token_id=lm.bos_id, eos_token_id=lm.eos_id,
        cache_config={"batch_size": 1, "max_cache_len": lm.context})
    from transformers.integrations.executorch import TorchExportableModuleWithStaticCache
    return TorchExportableModuleWithStaticCache(model, batch_size=1, max_cache_len=lm.context)


def _export(ctx: ExportContext, wrapper):
    import torch
    lm = ctx.spec.lm
    seq = torch.export.Dim("seq", min=1, max=lm.max_prefill)
    n = min(8, lm.max_prefill)
    with ctx.phase("export"), torch.no_grad():
        return torch.export.export(wrapper, (), {"input_ids": torch.zeros(1, n, dtype=torch.long),
                                                 "cache_position": torch.arange(n)},
                                   dynamic_shapes={"input_ids": {1: seq}, "cache_position": {0: seq}}, strict=True)


def _lower(ctx: ExportContext, program) -> dict:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    from export.executorch_paths import delegation_summary
    lm = ctx.spec.lm
    constants = {"get_max_seq_len": lm.max_prefill, "get_max_context_len": lm.context,
                 "get_vocab_size": lm.vocab, "get_bos_id": lm.bos_id, "get_eos_ids": [lm.eos_id],
                 "use_kv_cache": True, "enable_dynamic_shape": True}
    with ctx.phase("lower"):
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                           compile_config=EdgeCompileConfig(_check_ir_validity=False),
                                           constant_methods=constants)
        info = delegation_summary(get_delegation_info(edge.exported_program().graph_module))
    with ctx.phase("serialize"):
        ctx.out.write_bytes(edge.to_executorch().buffer)
    info["constant_methods"] = constants
    return info


def _signatures(ctx: ExportContext) -> dict:
    return {"forward": {"inputs": {"input_ids": tensor([1, "seq"], "int64"), "cache_position": tensor(["seq"], "int64")},
                        "outputs": {"logits": tensor([1, "seq", ctx.spec.lm.vocab], "float32")}}}


def _et_llm(ctx: ExportContext, quantize: bool) -> dict:
    info = _lower(ctx, _export(ctx, _static_cache_model(ctx, quantize)))
    lm = ctx.spec.lm
    info["generation"] = generation_info(
        ctx, "static_cache", prefill=["forward"], decode="forward", signatures=_signatures(ctx),
        dynamic_dims={"seq": [1, lm.max_prefill]}, positions="cache_position: contiguous, from 0 for a new "
        "sequence, < context", runner="executorch.extension.llm.runner.TextLLMRunner (method forward)")
    if quantize:
        info["generation"]["quantization"] = f"int8 dynamic activations, int4 weights per group of {GROUP_SIZE}"
    return info


@register("et_llm_xnnpack_fp32", input_kind="torch", format="pte", quantization="fp32", tasks=GENERATIVE_TASKS)
def et_llm_xnnpack_fp32(ctx: ExportContext) -> dict:
    """ExecuTorch XNNPACK, static KV cache: forward (prefill of 1..prefill_max tokens, or decode of 1), fp32."""
    return _et_llm(ctx, quantize=False)


@register("et_llm_xnnpack_8da4w", input_kind="torch", format="pte", quantization="8da4w", tasks=GENERATIVE_TASKS)
def et_llm_xnnpack_8da4w(ctx: ExportContext) -> dict:
    """ExecuTorch XNNPACK, static KV cache, torchao 8da4w (int8 dynamic activations, int4 weights)."""
    return _et_llm(ctx, quantize=True)
