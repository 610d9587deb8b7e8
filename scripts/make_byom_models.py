"""Model files made with the frameworks' own tools, not with this pipeline: what a new user brings.

    .venv/bin/python scripts/make_byom_models.py OUT_DIR
    .venv/bin/python -m pipeline bench OUT_DIR/two_in_two_out.tflite
    .venv/bin/python -m pipeline bench OUT_DIR/dynamic_batch.tflite --shape 4,16

Files (each tiny, random weights):
- two_in_two_out.tflite   Keras functional model, inputs (1,8,8,3) and (1,5), two outputs
- uint8_quant.tflite      full-integer quantized, uint8 input and output
- float16_input.tflite    tf.function with a float16 input
- dynamic_batch.tflite    batch dim left dynamic (shape_signature -1): needs --shape
- two_inputs.pte          torch.export + ExecuTorch (portable), inputs (1,4) and (1,3,6,6)
- needs_shape.ptl         TorchScript-mobile (carries no input shapes): needs --shape 1,10
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tflite_files(out: Path) -> None:
    import keras
    import numpy as np
    import tensorflow as tf
    keras.utils.set_random_seed(0)

    a = keras.Input((8, 8, 3), batch_size=1, name="image")
    b = keras.Input((5,), batch_size=1, name="extra")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(a))
    h = keras.layers.Concatenate()([h, b])
    two = keras.Model([a, b], [keras.layers.Dense(3, name="logits")(h), keras.layers.Dense(1, name="score")(h)])
    (out / "two_in_two_out.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(two).convert())

    x = keras.Input((10,), batch_size=1)
    small = keras.Model(x, keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(x)))
    conv = tf.lite.TFLiteConverter.from_keras_model(small)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, 10)).astype(np.float32)] for _ in range(50))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    (out / "uint8_quant.tflite").write_bytes(conv.convert())

    w = tf.constant(rng.standard_normal((6, 2)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.float16, name="x")])
    def f16(x):
        return tf.matmul(tf.cast(x, tf.float32), w)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f16.get_concrete_function()], f16)
    (out / "float16_input.tflite").write_bytes(conv.convert())

    d = keras.Input((16,))   # batch left as None -> shape_signature [-1, 16]
    dyn = keras.Model(d, keras.layers.Dense(2)(d))
    (out / "dynamic_batch.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(dyn).convert())


def torch_files(out: Path) -> None:
    import torch
    from executorch.exir import to_edge
    torch.manual_seed(0)

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, v, img):
            pooled = self.conv(img).mean(dim=(2, 3))
            return self.fc(torch.cat([pooled, v], dim=1))
    m = TwoInputs().eval()
    ex = (torch.zeros(1, 4), torch.zeros(1, 3, 6, 6))
    (out / "two_inputs.pte").write_bytes(to_edge(torch.export.export(m, ex)).to_executorch().buffer)

    mlp = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    torch.jit.script(mlp)._save_for_lite_interpreter(str(out / "needs_shape.ptl"))


def make_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    tflite_files(out)
    torch_files(out)
    return sorted(out.iterdir())


if __name__ == "__main__":
    for p in make_all(Path(sys.argv[1] if len(sys.argv) > 1 else "byom_models")):
        print(p, p.stat().st_size)
