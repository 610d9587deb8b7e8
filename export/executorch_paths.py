"""ExecuTorch `.pte` via torch.export: portable (no delegate), XNNPACK fp32, XNNPACK int8 (PT2E).

Straight line, as in ExecuTorch's aot_compiler: export -> [quantize] -> lower -> serialize, each
phase timed (`ctx.phase`). The fp32 program is torch.export'ed once per model twin (`exported`).
"""
from __future__ import annotations

import copy

from export.registry import ExportContext, as_inputs, calib_samples, register


def _export(model, example, dynamic_shapes=None):
    import torch
    return torch.export.export(model, tuple(torch.from_numpy(x) for x in as_inputs(example)), strict=False,
                               dynamic_shapes=dynamic_shapes)


def exported(ctx: ExportContext):
    """The twin's fp32 ExportedProgram, exported by the first path that needs it and kept in
    `ctx.shared` for the others (the fp32 .pte paths, Core ML, the PT2E prepare): the same model and
    example give the same program, so exporting it again only costs time. Each caller gets a deep copy,
    since lowering and decompositions rewrite the program they are given."""
    if "exported_program" not in ctx.shared:
        with ctx.phase("export"):
            ctx.shared["exported_program"] = _export(ctx.model, ctx.example, ctx.dynamic_shapes)
    return copy.deepcopy(ctx.shared["exported_program"])


def lower_and_write(ctx: ExportContext, ep, delegate: bool = False, partitioners: list | None = None) -> dict:
    """Lower (to XNNPACK when `delegate`, or to the given `partitioners`), serialize, summarize. With
    `ctx.etrecord` set, the same lowering call also gives the program's ETRecord, written there (the
    operator profile's names for the runtime's events, `pipeline/bench/opprofile.py`)."""
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    partitioners = list(partitioners or [])
    if delegate and not partitioners:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        partitioners = [XnnpackPartitioner()]
    with ctx.phase("lower"):
        edge = to_edge_transform_and_lower(ep, partitioner=partitioners, generate_etrecord=ctx.etrecord is not None)
        info = delegation_summary(get_delegation_info(edge.exported_program().graph_module))
    with ctx.phase("serialize"):
        prog = edge.to_executorch()
        ctx.out.write_bytes(prog.buffer)
    if ctx.etrecord is not None:
        from pipeline import fsutil
        fsutil.write_with(ctx.etrecord, lambda tmp: prog.get_etrecord().save(str(tmp)))
    info["input_layout"] = "torch"
    return info


def delegation_summary(di) -> dict:
    """ExecuTorch's own delegation info, reduced to what the report shows."""
    by_op = {name: {"delegated": b.delegated, "non_delegated": b.non_delegated}
             for name, b in di.delegation_by_operator.items()}
    return {"delegated_ops": di.num_delegated_nodes, "non_delegated_ops": di.num_non_delegated_nodes,
            "delegated_subgraphs": di.num_delegated_subgraphs, "ops_by_delegation": by_op,
            "not_delegated": sorted(k for k, v in by_op.items() if v["non_delegated"])}


@register("et_portable_fp32", input_kind="torch", format="pte", quantization="fp32")
def et_portable_fp32(ctx: ExportContext) -> dict:
    """ExecuTorch portable kernels, no delegate."""
    return lower_and_write(ctx, exported(ctx), delegate=False)


@register("et_xnnpack_fp32", input_kind="torch", format="pte", quantization="fp32")
def et_xnnpack_fp32(ctx: ExportContext) -> dict:
    """ExecuTorch with the XNNPACK delegate, fp32."""
    return lower_and_write(ctx, exported(ctx), delegate=True)


def pt2e_prepare(ctx: ExportContext, quantizer, gm=None):
    """PT2E prepare + calibration on `ctx.calib` (timed as the `quantize` phase) -> the observed module.
    `gm`: the module to prepare (default: the shared export's); quant-debug hands in its own to compare
    the quantized graph node by node with the fp32 one of the same export."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    gm = exported(ctx).module() if gm is None else gm
    with ctx.phase("quantize"):
        prepared = prepare_pt2e(gm, quantizer)
        with torch.no_grad():
            for sample in calib_samples(ctx.calib):
                prepared(*(torch.from_numpy(x) for x in sample))
    return prepared


def pt2e_quantize(ctx: ExportContext, quantizer, fold_quantize: bool = True):
    """PT2E static quantization of the context's model: the shared export, then prepare, calibrate,
    convert (torchao's pt2e, as 2.13 requires), timed as the `quantize` phase."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    prepared = pt2e_prepare(ctx, quantizer)
    with ctx.phase("quantize"):
        return convert_pt2e(prepared, fold_quantize=fold_quantize)


def xnnpack_quantizer(model, per_channel: bool = True, skip_modules=()):
    """The `et_xnnpack_int8` path's quantizer: XNNPACKQuantizer, symmetric, per-channel weights unless
    `per_channel=False`; `skip_modules` (module names) stay fp32 (quant-debug's recovery plans)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_module_name_filter, get_symmetric_quantization_config)

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
    # Static PTQ of an eval-mode program: the QAT-only patterns (conv-bn[-relu], matched on a
    # training-mode batch_norm) cannot match, yet XNNPACKQuantizer tries them for every static config,
    # each by a strict torch.export of the pattern: 12 per prepare, ~14 s of a warm worker on the loaded
    # 2-core machine for digits_cnn. litert-torch's PT2EQuantizer runs them for QAT configs only; so do
    # we. The .pte bytes are unchanged (sha256 checked on digits_cnn, mobilenet_v2, ds_cnn_kws).
    if not getattr(model, "training", False):   # a model in train mode keeps every pattern
        quantizer.SUPPORTED_PATTERNS = [q for q in XNNPACKQuantizer.SUPPORTED_PATTERNS if not q.is_qat]
    if skip_modules:
        # XNNPACKQuantizer.set_module_name(name, None) asserts "quantization_config == None is not
        # supported yet" (executorch 1.5.1); its filter function does the same job: only nodes it
        # accepts get annotated
        skip = [get_module_name_filter(n) for n in skip_modules]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in skip))
    return quantizer


def xnnpack_int8(ctx: ExportContext, per_channel: bool = True, skip_modules=()) -> dict:
    """Quantize (`xnnpack_quantizer`), export the quantized program, lower to XNNPACK, write."""
    qmodel = pt2e_quantize(ctx, xnnpack_quantizer(ctx.model, per_channel, skip_modules))
    with ctx.phase("export"):   # the quantized program is a new one: exported here, not shared
        ep = _export(qmodel, ctx.example, ctx.dynamic_shapes)
    info = lower_and_write(ctx, ep, delegate=True)
    info["calibration_samples"] = len(as_inputs(ctx.calib)[0])
    return info


@register("et_xnnpack_int8", input_kind="torch", format="pte", quantization="int8")
def et_xnnpack_int8(ctx: ExportContext) -> dict:
    """XNNPACK int8: PT2E static quantization with XNNPACKQuantizer (per-channel weights)."""
    return xnnpack_int8(ctx)
