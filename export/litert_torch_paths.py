"""PyTorch -> TFLite with litert-torch (the cross-framework path): fp32 and PT2E int8.

litert-torch's int8 has been seen failing at random on conv-bn-relu-maxpool nets: each failure is
recorded as it happened; nothing here retries until it passes.
"""
from __future__ import annotations

from export.executorch_paths import pt2e_quantize
from export.registry import ExportContext, as_inputs, register


@register("litert_torch_fp32", input_kind="torch", format="tflite", quantization="fp32")
def litert_torch_fp32(ctx: ExportContext) -> dict:
    """litert_torch.convert of the eager PyTorch model (NCHW input kept)."""
    import litert_torch
    import torch
    with ctx.phase("convert"):
        edge = litert_torch.convert(ctx.model.eval(), tuple(torch.from_numpy(x) for x in as_inputs(ctx.example)),
                                    dynamic_shapes=ctx.dynamic_shapes)
    with ctx.phase("serialize"):
        edge.export(str(ctx.out))
    return {"input_layout": "torch"}


@register("litert_torch_int8", input_kind="torch", format="tflite", quantization="int8")
def litert_torch_int8(ctx: ExportContext) -> dict:
    """litert-torch PT2EQuantizer, static per-channel int8 (float input/output kept)."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    # litert-torch reads the q/dq pairs itself: weights must stay float + quantize node (no folding)
    qmodel = pt2e_quantize(ctx, quantizer, fold_quantize=False)
    with ctx.phase("convert"):
        edge = litert_torch.convert(qmodel, tuple(torch.from_numpy(x) for x in as_inputs(ctx.example)),
                                    quant_config=QuantConfig(pt2e_quantizer=quantizer),
                                    dynamic_shapes=ctx.dynamic_shapes)
    with ctx.phase("serialize"):
        edge.export(str(ctx.out))
    return {"input_layout": "torch", "calibration_samples": len(as_inputs(ctx.calib)[0])}
