"""Where int8 hurts: per-layer quantization error of both stacks, side by side, keyed by twin layer name.

    python -m pipeline quant-debug digits_cnn            # tables + recovery plans -> results/
    python -m pipeline quant-debug digits_cnn --no-plans # tables only

TFLite side: `tf.lite.experimental.QuantizationDebugger` on the `keras_tw` twin (the PyTorch weights),
given the `tflite_int8` path's own converter (`export.tflite_paths.int8_converter`) and calibration
set. Its NumericVerify ops compare each quantized op's output with the float op run on the
*dequantized quantized inputs*: the error a layer adds by itself ("local").

ExecuTorch side: PT2E's numeric debugger (torchao.quantization.pt2e `prepare_for_propagation_comparison`,
`extract_results_from_loggers`, `compare_results`) on the graph the `et_xnnpack_int8` path's own functions
quantize (`export.executorch_paths`: its export, `xnnpack_quantizer`, `pt2e_prepare`; same calibration
set). It compares every node of the quantized (q/dq) graph with the fp32 graph on the same input:
the error accumulated up to that layer ("propagated"). Why this and not
`Inspector.calculate_numeric_gap`: the latter compares the runtime with the ETRecord's graph, which for an
int8 .pte is the already-quantized graph, so it measures kernel differences, not what quantization lost.

Rows are keyed by the Keras twin's layer names (torch module names with '.' -> '_'): conv/linear layers
carry their following batch-norm and activation, as both quantizers fuse them into one quantized op.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEBUG_SAMPLES = 200           # held-out samples the per-layer statistics are averaged over
FUSED_FOLLOWERS = {"batch_norm", "_native_batch_norm_legit_no_training", "relu", "relu_", "relu6",
                   "hardtanh", "hardtanh_", "clamp", "sigmoid", "hardswish", "hardswish_", "silu",
                   "gelu", "tanh"}


@dataclass
class LayerError:
    layer: str                 # twin layer name (Keras layer name; torch module path with '.' -> '_')
    op: str                    # the stack's own op/node that produced the compared tensor
    sqnr_db: float             # signal-to-quantization-noise ratio of that tensor (higher is better)
    mse: float
    max_abs_error: float = float("nan")
    mean_error: float = float("nan")
    stddev: float = float("nan")
    num_elements: float = float("nan")
    tensor: str = ""           # TFLite tensor name / torch node name, for denylisting and reading
    extra: dict = field(default_factory=dict)


def _sqnr_db(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0:
        return float("inf")
    if signal_power <= 0:
        return float("-inf")
    return float(10 * np.log10(signal_power / noise_power))


def context(model, calib, out: Path | None = None, spec=None, source: str = "torch", example=None):
    """An `ExportContext` to run the registry's own path functions on an in-memory twin, as the export
    does (`out`: where an artifact goes; None for a converter or quantizer that writes nothing)."""
    from export.registry import ExportContext, as_inputs
    if example is None:
        example = tuple(a[:1] for a in calib) if isinstance(calib, (tuple, list)) else calib[:1]
    out = Path(os.devnull) if out is None else out
    return ExportContext(spec, source, model, example, calib, out, out.parent)


# ----------------------------------------------------------------------------------------- TFLite

def keras_layer_names(kmodel) -> list[str]:
    """Layer names in topological order (Functional models list layers that way)."""
    from models.transfer import _flatten_layers
    return [layer.name for layer in _flatten_layers(kmodel) if layer.__class__.__name__ != "InputLayer"]


def _scope_parts(name: str) -> list[str]:
    """The name-scope components of a TFLite tensor name: every '/'-component but the last of each
    ';'-joined piece. The last one is the TF op ('Relu6', 'convolution', and 'add_1' inside
    'stem_bn_1/batchnorm/add_1', which must not be read as layer `add_1`)."""
    return [c for piece in name.split(";") for c in piece.split("/")[:-1] if c]


def _scope_candidates(part: str, known: set[str]) -> list[str]:
    """Keras layers a name-scope component can stand for: itself, or itself minus the trace suffix
    `_N` that Keras 3 appends per conversion trace (layer `add` traces as `add_1`, layer `add_1` as
    `add_1_2`)."""
    out = [part] if part in known else []
    stripped = re.sub(r"_\d+$", "", part)
    if stripped != part and stripped in known:
        out.append(stripped)
    return out


def resolve_scopes(tensor_names, layer_names: list[str]) -> dict[str, str]:
    """Name-scope component -> Keras layer, decided over *all* tensor names of one converted model.

    A component alone is ambiguous: `add_1` is either layer `add_1` or layer `add` with the trace
    suffix. Each layer has exactly one scope per trace, so components with a single candidate claim
    their layer first (`add_1_2` can only be `add_1`), which removes it from the others' candidates
    (`add_1` is then `add`); repeated until nothing changes. Left-over ties take the suffixed reading
    when the model's own scope carries a suffix too (the usual case), else the literal one."""
    known = set(layer_names)
    parts = {p for name in tensor_names for p in _scope_parts(name)}
    cands = {p: _scope_candidates(p, known) for p in parts}
    cands = {p: c for p, c in cands.items() if c}
    scopes: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        taken = set(scopes.values())
        for p, c in cands.items():
            if p in scopes:
                continue
            free = [n for n in c if n not in taken]
            if len(free) == 1:
                scopes[p] = free[0]
                taken.add(free[0])
                changed = True
    suffixed = any(re.search(r"_\d+$", name.split("/")[0]) for name in tensor_names if "/" in name)
    for p, c in cands.items():
        if p not in scopes:
            scopes[p] = c[-1] if suffixed else c[0]
    return scopes


def layers_in_tensor_name(name: str, layer_names: list[str], scopes: dict[str, str] | None = None) -> list[str]:
    """Keras layers named in a TFLite tensor name such as
    'functional_1/re_lu_1/Relu;functional_1/conv1_1/convolution', in model order. `scopes` (from
    `resolve_scopes` over the whole model) disambiguates; without it a component names itself if it
    is a layer, else the layer it names minus the trace suffix."""
    known = set(layer_names)
    found = set()
    for part in _scope_parts(name):
        if scopes is not None:
            if part in scopes:
                found.add(scopes[part])
            continue
        c = _scope_candidates(part, known)
        if c:
            found.add(c[0])
    return [n for n in layer_names if n in found]


def _sqnr_metric(f, q, scale, zp):
    d = (q.astype(np.float32) - zp) * scale
    return _sqnr_db(float(np.sum(np.square(f, dtype=np.float64))),
                    float(np.sum(np.square(f - d, dtype=np.float64))))


def shrink_tflite_ranges(calibrated: bytes, tensor_names: list[str], factor: float) -> bytes:
    """Deliberately break calibration: scale the recorded min/max of these tensors by `factor`."""
    from tensorflow.lite.tools import flatbuffer_utils as fu
    model = fu.read_model_from_bytearray(calibrated)
    hit = 0
    for t in model.subgraphs[0].tensors:
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        if name in tensor_names and t.quantization is not None and t.quantization.min is not None:
            t.quantization.min = np.asarray(t.quantization.min) * factor
            t.quantization.max = np.asarray(t.quantization.max) * factor
            hit += 1
    if not hit:
        raise KeyError(f"no calibrated tensor named {tensor_names}")
    return bytes(fu.convert_object_to_bytearray(model))


def tflite_debugger(kmodel, calib, x_eval, denylisted_layers=(), shrink: dict[str, float] | None = None):
    """A run QuantizationDebugger on the `tflite_int8` path's converter (optionally with one layer's
    calibration range shrunk, or layers left in float) and the Keras layer names in order. `calib`,
    `x_eval`: an array, or a tuple of one per model input."""
    import tensorflow as tf

    from export.registry import calib_samples
    from export.tflite_paths import int8_converter
    names = keras_layer_names(kmodel)
    conv = int8_converter(context(kmodel, calib, source="keras_tw"))
    opts = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"sqnr_db": _sqnr_metric})
    data = lambda: calib_samples(x_eval)  # noqa: E731
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=data, debug_options=opts)
    if shrink:
        tensors = _calibrated_tensors_by_layer(dbg.calibrated_model, names)
        for layer, factor in shrink.items():
            if layer not in tensors:
                raise KeyError(f"layer {layer!r} has no calibrated output tensor; have {sorted(tensors)}")
            dbg.calibrated_model = shrink_tflite_ranges(dbg.calibrated_model, tensors[layer], factor)
        dbg.options = opts  # re-quantizes from the modified calibrated model
    if denylisted_layers:
        # tensor names carry per-trace scope suffixes (re_lu_1_2, ...): resolve the layers against
        # *this* conversion's calibrated tensors, never names from an earlier conversion
        tensors = _calibrated_tensors_by_layer(dbg.calibrated_model, names)
        missing = [n for n in denylisted_layers if n not in tensors]
        if missing:
            raise KeyError(f"layers {missing} have no calibrated tensor; have {sorted(tensors)}")
        opts = tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"sqnr_db": _sqnr_metric},
            denylisted_nodes=[t for n in denylisted_layers for t in tensors[n]])
        dbg.options = opts
    _preserving_interpreter(dbg)
    dbg.run()
    return dbg, names


def _preserving_interpreter(dbg) -> None:
    """The debugger built from a converter runs its debug model with a plain interpreter (XNNPACK on,
    tensor memory reused), so the float/quantized tensors its direct-compare metrics read are
    overwritten by later ops (the transformer's SQNRs came out near 0 dB with a 1e-5 MSE). Swap in an
    interpreter that keeps every tensor and runs the builtin kernels (the debug model's NumericVerify
    ops are builtin kernels either way)."""
    from tensorflow.lite.python import interpreter as tfl
    dbg._quant_interpreter = tfl.Interpreter(  # noqa: SLF001
        model_content=dbg.quant_model, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tfl.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dbg._initialize_stats()  # noqa: SLF001 - re-reads the op map from the new interpreter


def quantized_model(dbg, denylisted: bool = True) -> bytes:
    """The debugger's quantized model without its NumericVerify ops, quantized as the converter it was
    given quantizes (the `tflite_int8` path's: its input and output types; the debugger's own
    `get_nondebug_quantized_model` gives float I/O). It computes what that converter's model computes:
    only the runtime-version metadata the converter adds afterwards differs (checked on digits_cnn).
    `denylisted=False`: without the layers the options keep in float."""
    from tensorflow.lite.python import convert
    conv, opts = dbg.converter, dbg.options
    return convert.mlir_quantize(
        dbg.calibrated_model, disable_per_channel=conv._experimental_disable_per_channel,  # noqa: SLF001
        input_data_type=conv.inference_input_type, output_data_type=conv.inference_output_type,
        denylisted_ops=opts.denylisted_ops if denylisted else None,
        denylisted_nodes=opts.denylisted_nodes if denylisted else None)


def _calibrated_tensors_by_layer(calibrated: bytes, names: list[str]) -> dict[str, list[str]]:
    from tensorflow.lite.tools import flatbuffer_utils as fu
    model = fu.read_model_from_bytearray(calibrated)
    out: dict[str, list[str]] = {}
    tensors = model.subgraphs[0].tensors
    all_names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in tensors]
    scopes = resolve_scopes(all_names, names)
    producer = {int(o): op for op in model.subgraphs[0].operators for o in op.outputs}
    for i, (t, name) in enumerate(zip(tensors, all_names)):
        if t.quantization is None or t.quantization.min is None:
            continue
        hits = layers_in_tensor_name(name, names, scopes)
        if not hits and i in producer:
            # the model's output tensor is named after the signature: the producing op's layer is
            # the latest one among its inputs' names (its weights), as in tflite_layer_errors
            for j in producer[i].inputs:
                if j >= 0:
                    hits += layers_in_tensor_name(all_names[int(j)], names, scopes)
            hits = sorted(set(hits), key=names.index)[-1:]
        if hits:
            out.setdefault(hits[0], []).append(name)
    return out


def tflite_layer_errors(dbg, names: list[str]) -> list[LayerError]:
    """One row per NumericVerify op, named by the Keras layer that produced the tensor: the first
    Keras layer (in model order) in the tensor name, else in the names of the op's weight inputs
    (the converter names the model's output tensor after the signature, not the layer)."""
    it = dbg._quant_interpreter  # noqa: SLF001 - the debugger exposes no public op map (its own CSV dump uses these)
    rows = []
    scopes = resolve_scopes([t["name"] for t in it.get_tensor_details()], names)
    for nv_name, stats in dbg.layer_statistics.items():
        op_detail = dbg._numeric_verify_op_details[nv_name]  # noqa: SLF001
        q_idx = op_detail["inputs"][0]
        q_name = it._get_tensor_details(q_idx, 0)["name"]  # noqa: SLF001
        producer = it._get_op_details(dbg._defining_op[q_idx])  # noqa: SLF001
        hits = layers_in_tensor_name(q_name, names, scopes)
        if not hits:
            # e.g. the model's output tensor: the op's own layer is the latest one among its inputs'
            # names (activations come from earlier layers, the weights are named after this one)
            for i in producer["inputs"]:
                if i >= 0:
                    hits += layers_in_tensor_name(it._get_tensor_details(int(i), 0)["name"], names, scopes)  # noqa: SLF001
            hits = sorted(set(hits), key=names.index)[-1:]
        layer = hits[0] if hits else f"({q_name})"
        rows.append(LayerError(
            layer=layer, op=producer["op_name"], sqnr_db=float(stats["sqnr_db"]),
            mse=float(stats["mean_squared_error"]), max_abs_error=float(stats["max_abs_error"]),
            mean_error=float(stats["mean_error"]), stddev=float(stats["stddev"]),
            num_elements=float(stats["num_elements"]),
            # the float tensor name, as the debugger's own dump gives it: what denylisted_nodes takes
            tensor=dbg._get_operand_name_and_index(nv_name)[0]))  # noqa: SLF001
    return rows


# ------------------------------------------------------------------------------------- ExecuTorch

def _node_module(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    # torch.export writes paths like "L['self'].blocks[0].conv" or "blocks.0.conv"
    path = re.sub(r"^L\['self'\]\.?", "", path)
    path = re.sub(r"\[(\d+)\]", r".\1", path).replace("['", ".").replace("']", "")
    return path.strip(".")


def _target_name(node) -> str:
    t = node.target
    return getattr(t, "__name__", str(t)).split(".")[0]


def torch_layer_groups(gm, weighted: set[str]) -> dict[str, str]:
    """fx node name -> twin layer name. A node inside a module with parameters belongs to it; a
    following batch-norm/activation with a single producer joins the producer's layer (both
    quantizers fuse conv/linear + bn + activation into one quantized op); other nodes are keyed by
    their module path, or their node name when they are functional."""
    groups: dict[str, str] = {}
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        mod = _node_module(n)
        inputs = [a for a in n.all_input_nodes if a.op == "call_function"]
        if mod in weighted and _target_name(n) not in FUSED_FOLLOWERS:
            groups[n.name] = mod.replace(".", "_")
        elif (_target_name(n) in FUSED_FOLLOWERS and len(inputs) == 1 and inputs[0].name in groups
              and len(inputs[0].users) == 1):
            groups[n.name] = groups[inputs[0].name]
        else:
            groups[n.name] = (mod or n.name).replace(".", "_")
    return groups


def weighted_modules(model) -> set[str]:
    return {name for name, m in model.named_modules()
            if name and any(True for _ in m.parameters(recurse=False))}


def shrink_observer(prepared, layer: str, groups: dict[str, str], factor: float) -> None:
    """Deliberately break calibration: shrink the observed range of `layer`'s output by `factor`."""
    nodes = [n for n in prepared.graph.nodes if groups.get(n.name) == layer]
    if not nodes:
        raise KeyError(f"layer {layer!r} not in the graph; have {sorted(set(groups.values()))}")
    for user in nodes[-1].users:
        if user.op == "call_module" and "activation_post_process" in str(user.target):
            obs = getattr(prepared, user.target)
            obs.min_val.mul_(factor)
            obs.max_val.mul_(factor)
            return
    raise KeyError(f"layer {layer!r}: no observer on its output (is it quantized?)")


def et_layer_errors(model, calib, x_eval, quantizer=None,
                    shrink: dict[str, float] | None = None) -> tuple[list[LayerError], object]:
    """PT2E numeric debugger: per node, the quantized graph vs the fp32 graph; one row per twin
    layer (its last node). `quantizer`: default the `et_xnnpack_int8` path's. Returns the rows and the
    converted (q/dq) module."""
    import torch
    from torchao.quantization.pt2e import (compare_results, extract_results_from_loggers,
                                           prepare_for_propagation_comparison)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_

    from export.executorch_paths import exported, pt2e_prepare, xnnpack_quantizer
    from export.registry import calib_samples
    weighted = weighted_modules(model)
    ctx = context(model, calib)
    # one export for both sides: the debugger matches nodes by (source node name, graph id)
    ep = exported(ctx)
    ref = ep.module()
    groups = torch_layer_groups(ref, weighted)
    prepared = pt2e_prepare(ctx, quantizer if quantizer is not None else xnnpack_quantizer(model), ep.module())
    for layer, factor in (shrink or {}).items():
        shrink_observer(prepared, layer, torch_layer_groups(prepared, weighted), factor)
    converted = convert_pt2e(prepared, fold_quantize=True)
    # prepare_pt2e folds batch-norm into the conv weights; fold the reference the same way so a
    # conv node's output means the same thing on both sides
    _fuse_conv_bn_(ref)
    ref_log, act_log = prepare_for_propagation_comparison(ref), prepare_for_propagation_comparison(converted)
    with torch.no_grad():
        for sample in calib_samples(x_eval):
            x = [torch.from_numpy(a) for a in sample]
            ref_log(*x)
            act_log(*x)
    comp = compare_results(extract_results_from_loggers(ref_log), extract_results_from_loggers(act_log))
    order = {n.name: i for i, n in enumerate(ref.graph.nodes)}
    last: dict[str, tuple[int, object]] = {}
    for info, summary in comp.items():
        layer = groups.get(info.name)
        if layer is None or info.name not in order:
            continue
        if layer not in last or order[info.name] > last[layer][0]:
            last[layer] = (order[info.name], summary)
    rows = []
    for layer, (_, s) in sorted(last.items(), key=lambda kv: kv[1][0]):
        sig = noise = 0.0
        mx, errs = 0.0, []
        for r in s.results:
            a, b = r.actual.float(), r.ref.float()
            sig += float((b.double() ** 2).sum())
            noise += float(((a - b).double() ** 2).sum())
            mx = max(mx, float((a - b).abs().max()))
            errs.append((a - b).flatten())
        e = torch.cat(errs) if errs else torch.zeros(1)
        rows.append(LayerError(layer=layer, op=s.ref_node_name, sqnr_db=_sqnr_db(sig, noise),
                               mse=float((e.double() ** 2).mean()), max_abs_error=mx,
                               mean_error=float(e.mean()), stddev=float(e.std()) if e.numel() > 1 else 0.0,
                               num_elements=float(e.numel() / max(1, len(s.results))),
                               tensor=s.actual_node_name))
    return rows, converted


# ------------------------------------------------------------------------------------------ table

def worst(rows: list[LayerError], k: int = 5) -> list[LayerError]:
    return sorted(rows, key=lambda r: r.sqnr_db)[:k]


def per_layer(rows: list[LayerError]) -> list[LayerError]:
    """One row per layer, its worst op, in first-seen order: a layer the converter unrolls (a Keras GRU
    becomes hundreds of TFLite ops, all named after it) is one row `op xN`."""
    groups: dict[str, list[LayerError]] = {}
    for r in rows:
        groups.setdefault(r.layer, []).append(r)
    out = []
    for layer, rs in groups.items():
        w = min(rs, key=lambda r: r.sqnr_db)
        out.append(w if len(rs) == 1 else
                   LayerError(**{**w.__dict__, "op": f"{w.op} x{len(rs)}", "extra": {**w.extra, "ops": len(rs)}}))
    return out


def joined_table(tfl: list[LayerError], et: list[LayerError], order: list[str]) -> list[dict]:
    """One row per twin layer: each stack's error side by side (missing = that stack has no such op)."""
    by_t = {r.layer: r for r in per_layer(tfl)}
    by_e = {r.layer: r for r in per_layer(et)}
    names = [n for n in order if n in by_t or n in by_e]
    names += [n for n in list(by_t) + list(by_e) if n not in names]
    out = []
    for n in names:
        t, e = by_t.get(n), by_e.get(n)
        out.append({"layer": n,
                    "tflite_op": t.op if t else "", "tflite_sqnr_db": t.sqnr_db if t else None,
                    "tflite_mse": t.mse if t else None, "tflite_max_abs": t.max_abs_error if t else None,
                    "et_node": e.op if e else "", "et_sqnr_db": e.sqnr_db if e else None,
                    "et_mse": e.mse if e else None, "et_max_abs": e.max_abs_error if e else None})
    return out


def format_table(rows: list[dict]) -> str:
    def f(v, spec):
        width = int(spec.split(".")[0])
        return f"{'–':>{width}}" if v is None else format(v, spec)
    head = (f"{'layer':<24} {'tflite op':<18} {'SQNR dB':>8} {'MSE':>10} {'max|err|':>9}  "
            f"{'pt2e node':<22} {'SQNR dB':>8} {'MSE':>10} {'max|err|':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['layer'][:24]:<24} {r['tflite_op'][:18]:<18} {f(r['tflite_sqnr_db'], '8.2f')} "
                     f"{f(r['tflite_mse'], '10.3g')} {f(r['tflite_max_abs'], '9.3g')}  "
                     f"{r['et_node'][:22]:<22} {f(r['et_sqnr_db'], '8.2f')} {f(r['et_mse'], '10.3g')} "
                     f"{f(r['et_max_abs'], '9.3g')}")
    return "\n".join(lines)


def artifact_dir(artifacts: Path, model: str) -> Path:
    return artifacts / model / "quant_debug"
