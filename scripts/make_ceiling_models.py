"""Write the two one-convolution models that measure this CPU's int8 vs fp32 kernel ceiling.

    .venv/bin/python scripts/make_ceiling_models.py   # -> pipeline/bench/data/ceiling_{fp32,int8}.tflite

One 1x1 convolution, 192 -> 192 channels on 28x28 (58 MMACs): large enough that XNNPACK's GEMM
microkernels run at their peak, so the two latencies say how fast int8 *can* be against fp32 on this
CPU with LiteRT/XNNPACK (without a VNNI dot-product instruction, x86 int8 widens to 16 bits and gains
little). The int8 model takes and returns int8 (no quantize/dequantize ops). Committed (~180 KiB) so a
bench run needs no converter.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
OUT = Path(__file__).resolve().parents[1] / "pipeline" / "bench" / "data"
HW, CH = 28, 192


def main() -> None:
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    inp = keras.Input((HW, HW, CH), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(CH, 1)(inp))
    rng = np.random.default_rng(0)

    def calib():
        for _ in range(8):
            yield [rng.standard_normal((1, HW, HW, CH)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (OUT / "ceiling_fp32.tflite").write_bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calib
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    (OUT / "ceiling_int8.tflite").write_bytes(conv.convert())


if __name__ == "__main__":
    main()
