"""Core AI for iOS/macOS 27 (Apple's successor to Core ML): `.aimodel` folders that Core AI's own Linux
CPU runtime runs here (`pipeline/runtimes/coreai_rt.py`), so they are verified like every other artifact.

    .venv/bin/python -m pipeline export --models digits_cnn \\
        --paths coreai_fp32,coreai_fp16,coreai_w8,coreai_w4,coreai_pal4,et_coreai_fp16,keras_coreai_fp32

From PyTorch, Apple's own route (coreai-torch, coreai-opt), a straight line:
    torch.export -> run_decompositions(coreai_torch.get_decomp_table()) -> [cast | compress] ->
    coreai_torch.TorchConverter -> AIProgram.save_asset(<name>.aimodel)
  fp32; fp16 = `coreai_opt.casting.cast_to_16_bit_precision` on the decomposed program (weights, compute
  AND the model's inputs/outputs become float16); w8 / w4 = coreai-opt's `Quantizer` presets (int8 / int4
  weights, per-channel symmetric, dequantized at load: fp32 compute); pal4 = `KMeansPalettizer` 4-bit
  (a 16-entry lookup table per group of 16 output channels). A tensor a compressor cannot take (its
  shape does not divide by the group/block size) stays float: the record lists them (`compression`).
  The paths of one twin share one decomposed fp32 program (`ctx.shared`).
From ExecuTorch: `et_coreai_fp16` lowers through `executorch.backends.apple.coreai`'s partitioner; with
  ExecuTorch 1.5.1 and coreai-core 1.0.0b3 it fails (`AIProgram` lost its public `get_graph`), a toolchain
  version skew recorded as such, never hidden. The skew is the toolchain's, not the model's: a probe model
  shows it once per version set (`export/toolchain.py`), and each model's record carries that error and
  says how it was established (`info["established_by"]`); a toolchain that lowers the probe exports the model.
From Keras: no Apple converter takes TensorFlow/Keras to Core AI (coreai-torch is PyTorch's; coremltools'
  TF frontend writes Core ML, not `.aimodel`; coreai-opt compresses PyTorch modules only). The one route is
  ONNX: tf2onnx (the ONNX project's TF converter) then coreai-onnx, a community converter (not Apple's)
  released through 2026: `keras_coreai_fp32`. No compressed Keras variants: that asymmetry is a finding.
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager, nullcontext

from export.executorch_paths import exported
from export.registry import ExportContext, Unsupported, as_inputs, register

W8 = {"dtype": "int8", "granularity": "per_channel", "qscheme": "symmetric", "preset": "QuantizerConfig.presets.w8"}
W4 = {"dtype": "int4", "granularity": "per_channel", "qscheme": "symmetric", "preset": "QuantizerConfig.presets.w4"}
PAL4 = {"n_bits": 4, "granularity": "per_grouped_channel", "group_size": 16,
        "preset": "KMeansPalettizerConfig.presets.w4"}


def io_names(n: int, kind: str) -> list[str]:
    """`input`/`output`, or `input_0`.. for several: the names the app feeds (as the ONNX paths name them)."""
    return [kind] if n == 1 else [f"{kind}_{i}" for i in range(n)]


def _decomposed(ctx: ExportContext):
    """The twin's fp32 program in Core AI's decomposition, made by the first Core AI path and kept in
    `ctx.shared` for the others (fp32, fp16, ExecuTorch's): a deep copy each, as the casts rewrite it."""
    if "coreai_decomposed" not in ctx.shared:
        ep = exported(ctx)     # the twin's one torch.export, shared with the ExecuTorch/Core ML paths
        import coreai_torch
        with ctx.phase("decompose"):
            ctx.shared["coreai_decomposed"] = ep.run_decompositions(coreai_torch.get_decomp_table())
    return copy.deepcopy(ctx.shared["coreai_decomposed"])


def _convert_and_save(ctx: ExportContext, ep) -> dict:
    import coreai_torch
    n_out = len(ep.graph_signature.user_outputs)
    with ctx.phase("convert"):
        prog = coreai_torch.TorchConverter().add_exported_program(
            ep, input_names=io_names(len(as_inputs(ctx.example)), "input"),
            output_names=io_names(n_out, "output")).to_coreai()
    with ctx.phase("serialize"):
        prog.save_asset(ctx.out)
    from pipeline.filecheck import coreai
    return {**coreai.facts(ctx.out), "input_layout": "torch"}


def _export_module(ctx: ExportContext, module):
    """A compressed module, exported and decomposed for Core AI (its graph differs from the shared one)."""
    import coreai_torch
    import torch
    with ctx.phase("export"):
        ep = torch.export.export(module, tuple(torch.from_numpy(x) for x in as_inputs(ctx.example)),
                                 dynamic_shapes=ctx.dynamic_shapes)
    with ctx.phase("decompose"):
        return ep.run_decompositions(coreai_torch.get_decomp_table())


@contextmanager
def _skipped_tensors(out: list):
    """coreai-opt logs each tensor it leaves uncompressed ("... not divisible by group_size 16 ...
    Skipping palettization."): the record keeps those lines."""
    class Keep(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "Skipping" in msg or "Disabling" in msg:
                out.append(msg.strip().splitlines()[0][:300])
    h, log = Keep(level=logging.INFO), logging.getLogger("coreai_opt")
    old = log.level
    log.addHandler(h)
    log.setLevel(min(old or logging.WARNING, logging.INFO))
    try:
        yield
    finally:
        log.removeHandler(h)
        log.setLevel(old)


def _compressed(ctx: ExportContext, how: str):
    """The twin compressed by coreai-opt (weight-only: no calibration data needed), on a deep copy (the
    compressors rewrite the module they are given, and the other paths share this one)."""
    import coreai_opt
    import torch
    module = copy.deepcopy(ctx.model).eval()
    example = tuple(torch.from_numpy(x) for x in as_inputs(ctx.example))
    skipped: list[str] = []
    with ctx.phase("quantize"), _skipped_tensors(skipped), torch.no_grad():
        if how == "pal4":
            from coreai_opt.palettization import KMeansPalettizer, KMeansPalettizerConfig
            comp = KMeansPalettizer(module, KMeansPalettizerConfig.presets.w4(group_size=PAL4["group_size"]))
        else:
            # eager mode: graph mode (the default) matched its patterns and folded conv-bn with one
            # torch.export per candidate (494 of them on digits_cnn: 500 s under load ~14, eager 5.6 s);
            # its advantages (shared activation observers, fake-quant dedup) do not apply to weight-only
            from coreai_opt.quantization import ExecutionMode, Quantizer, QuantizerConfig
            preset = QuantizerConfig.presets.w8 if how == "w8" else QuantizerConfig.presets.w4
            comp = Quantizer(module, preset(execution_mode=ExecutionMode.EAGER))
        comp.prepare(example)
        module = comp.finalize(backend=coreai_opt.ExportBackend.CoreAI)
    return module, skipped


def _compressed_path(ctx: ExportContext, how: str, config: dict) -> dict:
    module, skipped = _compressed(ctx, how)
    info = _convert_and_save(ctx, _export_module(ctx, module))
    if not info["coreai"]["compressed_weight_share"]:
        # the eager compressors find weights through nn.Conv*/nn.Linear modules: a .pt2's unlifted graph
        # has none (its weights are graph constants), and the file would be fp32 under a compressed name
        raise Unsupported(f"coreai-opt compressed no weight of this model ({how}: no nn.Conv/nn.Linear module "
                          "holds its weights, e.g. a torch.export archive's graph): it would ship float weights "
                          "under a compressed name")
    info["compression"] = {**config, "execution_mode": "eager" if how != "pal4" else "",
                           "left_uncompressed": skipped}
    return info


@register("coreai_fp32", input_kind="torch", format="aimodel", quantization="fp32")
def coreai_fp32(ctx: ExportContext) -> dict:
    """Core AI .aimodel from PyTorch (torch.export -> coreai-torch), fp32 (iOS/macOS 27)."""
    return _convert_and_save(ctx, _decomposed(ctx))


@register("coreai_fp16", input_kind="torch", format="aimodel", quantization="fp16")
def coreai_fp16(ctx: ExportContext) -> dict:
    """Core AI .aimodel, fp16 weights, compute and I/O (coreai-opt cast_to_16_bit_precision)."""
    from coreai_opt.casting import cast_to_16_bit_precision
    ep = _decomposed(ctx)
    with ctx.phase("quantize"):
        ep = cast_to_16_bit_precision(ep)
    info = _convert_and_save(ctx, ep)
    info["io_dtype"] = "float16"    # the app feeds float16 and reads float16 (the bench adapter converts)
    return info


@register("coreai_w8", input_kind="torch", format="aimodel", quantization="int8_weights")
def coreai_w8(ctx: ExportContext) -> dict:
    """Core AI .aimodel, int8 weights per channel (coreai-opt Quantizer w8), fp32 compute."""
    return _compressed_path(ctx, "w8", W8)


@register("coreai_w4", input_kind="torch", format="aimodel", quantization="int4_weights")
def coreai_w4(ctx: ExportContext) -> dict:
    """Core AI .aimodel, int4 weights per channel (coreai-opt Quantizer w4), fp32 compute."""
    return _compressed_path(ctx, "w4", W4)


@register("coreai_pal4", input_kind="torch", format="aimodel", quantization="palette4_weights")
def coreai_pal4(ctx: ExportContext) -> dict:
    """Core AI .aimodel, 4-bit palettized weights (coreai-opt KMeansPalettizer, groups of 16 channels)."""
    return _compressed_path(ctx, "pal4", PAL4)


ET_COREAI_LIBS = ("executorch", "coreai-core", "coreai-torch", "coreai-opt", "torch")


def _et_coreai_lower(ep, phase=lambda name: nullcontext()):
    """fp16 cast, then ExecuTorch's lowering with the Core AI partitioner: the edge program (`phase`:
    `ExportContext.phase`, to time the steps)."""
    from coreai_opt.casting import cast_to_16_bit_precision
    from executorch.backends.apple.coreai import (CoreAIPartitioner, get_default_compile_config,
                                                  get_default_passes)
    from executorch.exir import to_edge_transform_and_lower
    with phase("quantize"):
        ep = cast_to_16_bit_precision(ep)
    with phase("lower"):
        return to_edge_transform_and_lower(ep, partitioner=[CoreAIPartitioner()],
                                           compile_config=get_default_compile_config(),
                                           transform_passes=get_default_passes())


def _et_coreai_probe() -> None:
    """The path's own steps on a probe model (a conv, a ReLU, a linear: ops the partitioner delegates),
    through to the serialized program."""
    import torch
    from torch import nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).eval()
    _et_coreai_lower(torch.export.export(model, (torch.zeros(1, 1, 8, 8),))).to_executorch()


@register("et_coreai_fp16", input_kind="torch", format="pte", quantization="fp16")
def et_coreai_fp16(ctx: ExportContext) -> dict:
    """ExecuTorch with the Core AI delegate (executorch.backends.apple.coreai), fp16 (iOS/macOS 27)."""
    from export import toolchain
    with ctx.phase("probe"):    # once per toolchain version set (then read from .cache/toolchain/)
        error = toolchain.probed("et_coreai_fp16", _et_coreai_probe, ET_COREAI_LIBS, [__file__])
    if error:
        # the delegate fails on any partition it converts (ExecuTorch 1.5.1 + coreai-core 1.0.0b3: its
        # I/O check calls AIProgram.get_graph): lowering this model too would only pay for the same error
        raise toolchain.Established(error, "a probe model (conv, ReLU, linear) lowered through the same steps "
                                    f"with this toolchain ({', '.join(toolchain.versions(ET_COREAI_LIBS))}) "
                                    "failed with this error; this model's own lowering was not attempted "
                                    "(the probe runs again when a version changes)")
    from executorch.devtools.backend_debug import get_delegation_info

    from export.executorch_paths import delegation_summary
    edge = _et_coreai_lower(exported(ctx), ctx.phase)
    with ctx.phase("lower"):
        info = delegation_summary(get_delegation_info(edge.exported_program().graph_module))
    with ctx.phase("serialize"):
        ctx.out.write_bytes(edge.to_executorch().buffer)
    info["input_layout"] = "torch"
    return info


@register("keras_coreai_fp32", input_kind="keras", format="aimodel", quantization="fp32")
def keras_coreai_fp32(ctx: ExportContext) -> dict:
    """Core AI .aimodel from Keras via ONNX (tf2onnx -> coreai-onnx, a community converter), fp32."""
    import coreai_onnx
    import tensorflow as tf
    import tf2onnx
    xs = as_inputs(ctx.example)
    names = io_names(len(xs), "input")
    specs = [tf.TensorSpec(x.shape, tf.float32, name=n) for x, n in zip(xs, names)]
    model = ctx.model
    fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False))
    with ctx.phase("export"):
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=18)
    with ctx.phase("convert"):
        # renamed in order: the TF graph calls its outputs Identity:0.., the app gets output/output_i
        prog = coreai_onnx.convert(proto, input_names=names,
                                   output_names=io_names(len(proto.graph.output), "output"))
    with ctx.phase("serialize"):
        prog.save_asset(ctx.out)
    from pipeline.filecheck import coreai
    return {**coreai.facts(ctx.out), "input_layout": ctx.spec.keras_layout,
            "converter": "tf2onnx -> coreai-onnx (community, not Apple's)"}
