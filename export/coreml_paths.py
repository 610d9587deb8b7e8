"""Core ML for iOS: ExecuTorch with the Core ML delegate (`.pte`, from the PyTorch twin) and Core ML
packages (`.mlpackage`, coremltools) from the PyTorch twin and from the Keras twins.

    .venv/bin/python -m pipeline export --models digits_cnn --paths et_coreml_fp16,coreml_w8,keras_coreml_w8

All of it exports on Linux; none of it runs here (the bench records `apple_only`). So each path
records what can be checked here, from the written artifact itself (`pipeline/filecheck/coreml.py`):
the Core ML program's spec version and so the minimum iOS/macOS it needs, compute precision, inputs and
outputs, MIL operations, weight bytes by dtype (w8: the int8 share); for the `.pte` also its delegates
(payload size, compile specs) and the kernel operators left outside Core ML, which the iOS app must
still link (the program's operator table: what `gen_oplist` would select).

Names: one registered name per input kind (the registry's identity is the path name): `coreml_*` from
PyTorch, `keras_coreml_*` from Keras (the converter's TensorFlow frontend, a different toolchain, as
`tflite_*` vs `litert_torch_*`).
w8 = int8 weights (per-channel linear symmetric, coremltools' default size threshold: tensors under 2048
elements stay fp16), fp16 compute; activation quantization needs predictions, so it is macOS-only.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from export.executorch_paths import exported, lower_and_write
from export.registry import ExportContext, Unsupported, as_inputs, register

W8 = {"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel"}


# ---------------------------------------------------------------- ExecuTorch + Core ML delegate

def _et_coreml(ctx: ExportContext, precision: str, quantizer_config: dict | None = None) -> dict:
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    specs = CoreMLBackend.generate_compile_specs(
        compute_precision=ct.precision.FLOAT16 if precision == "float16" else ct.precision.FLOAT32,
        op_linear_quantizer_config=quantizer_config)
    info = lower_and_write(ctx, exported(ctx), partitioners=[CoreMLPartitioner(compile_specs=specs)])
    info.update(pte_facts(ctx.out))
    return info


def pte_facts(pte: Path) -> dict:
    """The program's delegates and CPU kernels (from its flatbuffer), and the Core ML model inside
    (extracted with ExecuTorch's own tool, then read like any .mlpackage)."""
    from pipeline.filecheck import coreml
    info = coreml.facts(pte, "pte")
    if not any(d["id"] == "CoreMLBackend" for d in info["pte_delegates"]):
        return info
    from executorch.examples.apple.coreml.scripts.extract_coreml_models import extract_coreml_models
    with tempfile.TemporaryDirectory(prefix="mb-coreml-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        models = extract_coreml_models(Path(pte).read_bytes(), tmp)
        info["coreml"] = [coreml.inspect_mlpackage(p) for d in models for p in sorted(Path(d).rglob("*.mlpackage"))]
        # the whole payload per delegate, by member: ExecuTorch may ship debug info beside the model
        info["coreml_payload_files"] = [{str(f.relative_to(d)): f.stat().st_size for f in sorted(Path(d).rglob("*"))
                                         if f.is_file()} for d in models]
    return info


@register("et_coreml_fp32", input_kind="torch", format="pte", quantization="fp32")
def et_coreml_fp32(ctx: ExportContext) -> dict:
    """ExecuTorch with the Core ML delegate, fp32 compute (iOS/macOS only)."""
    return _et_coreml(ctx, "float32")


@register("et_coreml_fp16", input_kind="torch", format="pte", quantization="fp16")
def et_coreml_fp16(ctx: ExportContext) -> dict:
    """ExecuTorch with the Core ML delegate, fp16 compute (Core ML's default; iOS/macOS only)."""
    return _et_coreml(ctx, "float16")


@register("et_coreml_w8", input_kind="torch", format="pte", quantization="int8_weights")
def et_coreml_w8(ctx: ExportContext) -> dict:
    """ExecuTorch with the Core ML delegate, int8 weights, fp16 compute (iOS/macOS only)."""
    info = _et_coreml(ctx, "float16", W8)
    info["weight_quantization"] = W8
    return info


# ---------------------------------------------------------------- .mlpackage via coremltools

def _convert(model, **kw):
    """ct.convert; its NotImplementedError names an operator its frontend lacks (GRU from torch.export,
    TF's Erfc from an exact GELU): a finding, `unsupported`, not a failure."""
    import coremltools as ct
    try:
        return ct.convert(model, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16, **kw)
    except NotImplementedError as e:
        raise Unsupported(f"coremltools: {str(e).strip().splitlines()[0] if str(e).strip() else 'not implemented'}") from None


def _fp16_program(ctx: ExportContext, convert, prepare=lambda: None):
    """The twin's fp16 Core ML program, converted by the first of its fp16/w8 paths and kept in
    `ctx.shared` for the other: w8 quantizes that same program's weights (`linear_quantize_weights`
    builds a new model from its spec and leaves it as it was), so converting twice only costs time."""
    if "coreml_fp16" not in ctx.shared:
        given = prepare()            # timed by its own phase (the shared torch.export), not as convert
        with ctx.phase("convert"):
            ctx.shared["coreml_fp16"] = convert(given)
    return ctx.shared["coreml_fp16"]


def _save(ml, ctx: ExportContext, w8: bool, layout: str) -> dict:
    if w8:
        import coremltools.optimize.coreml as cto
        with ctx.phase("quantize"):
            ml = cto.linear_quantize_weights(ml, cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(**W8)))
    with ctx.phase("serialize"):
        ml.save(str(ctx.out))
    from pipeline.filecheck import coreml
    info = coreml.facts(ctx.out, "mlpackage")
    info["input_layout"] = layout
    if w8:
        info["weight_quantization"] = W8
    return info


def _torch_mlpackage(ctx: ExportContext, w8: bool) -> dict:
    ml = _fp16_program(ctx, lambda ep: _convert(ep.run_decompositions({})), prepare=lambda: exported(ctx))
    return _save(ml, ctx, w8, "torch")


def _keras_mlpackage(ctx: ExportContext, w8: bool) -> dict:
    """coremltools cannot tell a Keras 3 model's source: convert one concrete TensorFlow function of it,
    with the example's (batch-1, static) shapes, as an iOS app feeds it."""
    import tensorflow as tf
    xs = as_inputs(ctx.example)
    names = [getattr(t, "name", "") or f"input_{i}" for i, t in enumerate(ctx.model.inputs)] \
        if len(ctx.model.inputs) == len(xs) else [f"input_{i}" for i in range(len(xs))]
    specs = [tf.TensorSpec(x.shape, tf.float32, name=n) for x, n in zip(xs, names)]
    model = ctx.model

    def convert(_):
        fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False)).get_concrete_function(*specs)
        return _convert([fn], source="tensorflow")
    return _save(_fp16_program(ctx, convert), ctx, w8, ctx.spec.keras_layout)


@register("coreml_fp16", input_kind="torch", format="mlpackage", quantization="fp16")
def coreml_fp16(ctx: ExportContext) -> dict:
    """Core ML package from PyTorch (torch.export -> coremltools), fp16 (iOS/macOS only)."""
    return _torch_mlpackage(ctx, w8=False)


@register("coreml_w8", input_kind="torch", format="mlpackage", quantization="int8_weights")
def coreml_w8(ctx: ExportContext) -> dict:
    """Core ML package from PyTorch, int8 weights (linear_quantize_weights), fp16 compute (iOS/macOS only)."""
    return _torch_mlpackage(ctx, w8=True)


# the native Keras twin only: the transfer twin is for same-weights fp32/int8 comparisons (as tflite_fp16)
@register("keras_coreml_fp16", input_kind="keras", format="mlpackage", quantization="fp16", sources=("keras",))
def keras_coreml_fp16(ctx: ExportContext) -> dict:
    """Core ML package from Keras (a concrete TF function -> coremltools), fp16 (iOS/macOS only)."""
    return _keras_mlpackage(ctx, w8=False)


@register("keras_coreml_w8", input_kind="keras", format="mlpackage", quantization="int8_weights",
          sources=("keras",))
def keras_coreml_w8(ctx: ExportContext) -> dict:
    """Core ML package from Keras, int8 weights, fp16 compute (iOS/macOS only)."""
    return _keras_mlpackage(ctx, w8=True)
