"""TFLite/LiteRT from Keras: fp32, fp16 weights, dynamic-range int8, full-integer int8.

Each file's name says what it holds: only `tflite_fp32` is written without `Optimize.DEFAULT`.
"""
from __future__ import annotations

from export.registry import ExportContext, as_inputs, calib_samples, register


def _converter(ctx: ExportContext):
    import tensorflow as tf
    saved = getattr(ctx.model, "saved_model_dir", None)   # a user's SavedModel (`python -m pipeline package`)
    if saved:
        return tf, tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[ctx.model.signature])
    return tf, tf.lite.TFLiteConverter.from_keras_model(ctx.model)


def _write(ctx: ExportContext, conv) -> dict:
    with ctx.phase("convert"):   # quantization and calibration happen inside convert()
        flat = conv.convert()
    ctx.out.write_bytes(flat)
    return {"input_layout": ctx.spec.keras_layout}


@register("tflite_fp32", input_kind="keras", format="tflite", quantization="fp32")
def tflite_fp32(ctx: ExportContext) -> dict:
    """TFLiteConverter.from_keras_model, no optimizations."""
    _, conv = _converter(ctx)
    return _write(ctx, conv)


@register("tflite_fp16", input_kind="keras", format="tflite", quantization="fp16", sources=("keras",))
def tflite_fp16(ctx: ExportContext) -> dict:
    """float16 weights (dequantized to fp32 at load on CPU)."""
    tf, conv = _converter(ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return _write(ctx, conv)


@register("tflite_dynamic_int8", input_kind="keras", format="tflite", quantization="dynamic_int8", sources=("keras",))
def tflite_dynamic_int8(ctx: ExportContext) -> dict:
    """Dynamic-range quantization: int8 weights, float activations."""
    tf, conv = _converter(ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return _write(ctx, conv)


def representative(ctx: ExportContext):
    def gen():
        yield from calib_samples(ctx.calib)
    return gen


def int8_converter(ctx: ExportContext, activations: str = "int8"):
    """The `tflite_int8` path's converter, set up but not run: full-integer quantization calibrated on
    `ctx.calib`, with quantized input and output. The one home of these settings: quant-debug hands this
    same converter to TFLite's QuantizationDebugger. `activations="int16"`: the 16x8 variant (int16
    activations, input and output; int8 weights)."""
    tf, conv = _converter(ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(ctx)
    if activations == "int16":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        io = tf.int16
    elif activations == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8
    else:
        raise ValueError(f"activations must be 'int8' or 'int16', got {activations!r}")
    conv.inference_input_type = io
    conv.inference_output_type = io
    return conv


def full_integer(ctx: ExportContext, activations: str = "int8") -> dict:
    """Write `int8_converter(ctx, activations)`'s model (quant-debug's int16x8 plan is this with "int16")."""
    info = _write(ctx, int8_converter(ctx, activations))
    info["calibration_samples"] = len(as_inputs(ctx.calib)[0])
    return info


@register("tflite_int8", input_kind="keras", format="tflite", quantization="int8")
def tflite_int8(ctx: ExportContext) -> dict:
    """Full-integer int8 (int8 input and output), calibrated on training samples."""
    return full_integer(ctx)
