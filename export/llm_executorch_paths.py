"""Decoder LM -> ExecuTorch `.pte` (XNNPACK) with a static KV cache: fp32 and 8da4w.

    python -m export.run --model tiny_lm --paths et_llm_xnnpack_fp32,et_llm_xnnpack_8da4w

Flow (why this one): transformers' `TorchExportableModuleWithStaticCache` wraps the `LlamaForCausalLM`
itself, so the zoo twin and a user's Hugging Face folder export through the same code. ExecuTorch's own
LLM flow (`executorch.extension.llm.export` / examples' `export_llama`) rebuilds the network from its own
`llama_transformer.py` and needs a Meta-format checkpoint plus a params JSON (its HF converters import
`torchtune`, not installed), i.e. a second definition of the model to keep equal to the first.

Two methods in one program sharing the cache (`MemoryPlanningPass(share_mutable_buffers=True)`):
- `forward(input_ids int64[1, S], cache_position int64[S]) -> logits float32[1, S, vocab]`, S dynamic in
  [1, prefill_max] (the prefill; its upper bound is enforced by the runtime: a longer input is an error);
- `decode(input_ids int64[1, 1], cache_position int64[1]) -> logits float32[1, 1, vocab]` (static shapes).
Plus the constant methods ExecuTorch's LLM runner reads (get_max_seq_len, get_max_context_len,
get_vocab_size, get_bos_id, get_eos_ids, use_kv_cache, enable_dynamic_shape), so the `.pte` also runs
under `executorch.extension.llm.runner` with `forward` for both phases. A sequence starts again by
calling with positions from 0: the wrapper resets each layer's cache length to cache_position[0].

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


def _export_methods(ctx: ExportContext, wrapper) -> dict:
    import torch
    lm = ctx.spec.lm
    seq = torch.export.Dim("seq", min=1, max=lm.max_prefill)
    n = min(8, lm.max_prefill)
    ids, pos = torch.zeros(1, n, dtype=torch.long), torch.arange(n)
    with ctx.phase("export"), torch.no_grad():
        prefill = torch.export.export(wrapper, (), {"input_ids": ids, "cache_position": pos},
                                      dynamic_shapes={"input_ids": {1: seq}, "cache_position": {0: seq}},
                                      strict=True)
        decode = torch.export.export(wrapper, (), {"input_ids": ids[:, :1], "cache_position": pos[:1]},
                                     strict=True)
    return {"forward": prefill, "decode": decode}


def _lower(ctx: ExportContext, methods: dict) -> dict:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass

    from export.executorch_paths import delegation_summary
    lm = ctx.spec.lm
    constants = {"get_max_seq_len": lm.max_prefill, "get_max_context_len": lm.context,
                 "get_vocab_size": lm.vocab, "get_bos_id": lm.bos_id, "get_eos_ids": [lm.eos_id],
                 "use_kv_cache": True, "enable_dynamic_shape": True}
    with ctx.phase("lower"):
        edge = to_edge_transform_and_lower(methods, partitioner=[XnnpackPartitioner()],
                                           compile_config=EdgeCompileConfig(_check_ir_validity=False),
                                           constant_methods=constants)
        per_method = {m: delegation_summary(get_delegation_info(edge.exported_program(m).graph_module))
                      for m in methods}
    with ctx.phase("serialize"):
        prog = edge.to_executorch(ExecutorchBackendConfig(
            memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False, share_mutable_buffers=True)))
        ctx.out.write_bytes(prog.buffer)
    info = dict(per_method["forward"])   # the prefill's summary where a classic record has one
    info["methods"] = per_method
    info["constant_methods"] = constants
    return info


def _signatures(ctx: ExportContext) -> dict:
    v = ctx.spec.lm.vocab
    return {"forward": {"inputs": {"input_ids": tensor([1, "seq"], "int64"), "cache_position": tensor(["seq"], "int64")},
                        "outputs": {"logits": tensor([1, "seq", v], "float32")}},
            "decode": {"inputs": {"input_ids": tensor([1, 1], "int64"), "cache_position": tensor([1], "int64")},
                       "outputs": {"logits": tensor([1, 1, v], "float32")}}}


def _et_llm(ctx: ExportContext, quantize: bool) -> dict:
    info = _lower(ctx, _export_methods(ctx, _static_cache_model(ctx, quantize)))
    lm = ctx.spec.lm
    info["generation"] = generation_info(
        ctx, "static_cache", prefill=["forward"], decode="decode", signatures=_signatures(ctx),
        dynamic_dims={"seq": [1, lm.max_prefill]}, positions="cache_position: contiguous, from 0 for a new "
        "sequence, < context", runner="executorch.extension.llm.runner.TextLLMRunner (method forward)")
    if quantize:
        info["generation"]["quantization"] = f"int8 dynamic activations, int4 weights per group of {GROUP_SIZE}"
    return info


@register("et_llm_xnnpack_fp32", input_kind="torch", format="pte", quantization="fp32", tasks=GENERATIVE_TASKS)
def et_llm_xnnpack_fp32(ctx: ExportContext) -> dict:
    """ExecuTorch XNNPACK, static KV cache: forward (prefill, dynamic length) + decode, fp32."""
    return _et_llm(ctx, quantize=False)


@register("et_llm_xnnpack_8da4w", input_kind="torch", format="pte", quantization="8da4w", tasks=GENERATIVE_TASKS)
def et_llm_xnnpack_8da4w(ctx: ExportContext) -> dict:
    """ExecuTorch XNNPACK, static KV cache, torchao 8da4w (int8 dynamic activations, int4 weights)."""
    return _et_llm(ctx, quantize=True)
