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


@register("tflite_int8", input_kind="keras", format="tflite", quantization="int8")
def tflite_int8(ctx: ExportContext) -> dict:
    """Full-integer int8 (int8 input and output), calibrated on training samples."""
    tf, conv = _converter(ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(ctx)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    info = _write(ctx, conv)
    info["calibration_samples"] = len(as_inputs(ctx.calib)[0])
    return info
