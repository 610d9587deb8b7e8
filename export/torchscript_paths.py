"""TorchScript-mobile `.ptl` for the lite interpreter, and the `optimize_for_mobile` attempt.

The lite interpreter is deprecated upstream; its warnings are part of the record, not noise.
"""
from __future__ import annotations

import warnings

from export.registry import ExportContext, Unsupported, as_inputs, register


def _traced(ctx: ExportContext):
    import torch
    with torch.no_grad():
        traced = torch.jit.trace(ctx.model.eval(), tuple(torch.from_numpy(x) for x in as_inputs(ctx.example)))
    return torch.jit.freeze(traced.eval())


def _save_lite(module, ctx: ExportContext) -> dict:
    import torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ctx.phase("serialize"):
            module._save_for_lite_interpreter(str(ctx.out))
    return {"input_layout": "torch", "ops": sorted(torch.jit.export_opnames(module)),
            "warnings": sorted({str(w.message).splitlines()[0] for w in caught})}


@register("ptl_fp32", input_kind="torch", format="ptl", quantization="fp32")
def ptl_fp32(ctx: ExportContext) -> dict:
    """torch.jit.trace + freeze + _save_for_lite_interpreter."""
    with ctx.phase("trace"):
        traced = _traced(ctx)
    return _save_lite(traced, ctx)


@register("ptl_mobile_optimized", input_kind="torch", format="ptl", quantization="fp32")
def ptl_mobile_optimized(ctx: ExportContext) -> dict:
    """torch.utils.mobile_optimizer.optimize_for_mobile, then _save_for_lite_interpreter."""
    from torch.utils.mobile_optimizer import optimize_for_mobile
    try:
        with ctx.phase("trace"):
            optimized = optimize_for_mobile(_traced(ctx))
    except RuntimeError as e:
        # this CPU torch build has no XNNPACK: the mobile optimizer cannot run here at all
        if "XNNPACK" in str(e):
            raise Unsupported(f"optimize_for_mobile: {str(e).strip().splitlines()[0]}") from e
        raise
    return _save_lite(optimized, ctx)
