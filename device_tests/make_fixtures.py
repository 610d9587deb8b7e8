"""Small fixture artifacts for the device tests, laid out like the pipeline's artifacts/ tree.

    python make_fixtures.py OUT_ROOT [--only tflite|pte]

writes OUT_ROOT/artifacts/device_fixture/<source>__<path>.<ext> + <stem>.record.json and
OUT_ROOT/artifacts/device_fixture/train/eval.npz (key x, NCHW), so the tests treat them exactly
like the pipeline's artifacts:
    keras__tflite_fp32.tflite   tiny Keras CNN, TFLiteConverter.from_keras_model
    keras__tflite_int8.tflite   same, full int8 with int8 input and output
    torch__et_xnnpack_fp32.pte  tiny torch CNN lowered to ExecuTorch with the XNNPACK partitioner
    torch__et_xnnpack_int8.pte  same, PT2E-quantized with the XNNPACK quantizer
The weights are random (seeded): these check the device, not accuracy.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipeline.fsutil import save_npz, sha256_file, write_atomic  # noqa: E402
from pipeline.schema import Record  # noqa: E402

MODEL = "device_fixture"
SHAPE = (1, 8, 8)  # C,H,W of one sample


def inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE)).astype(np.float32)


def record(out: Path, root: Path, source: str, path: str, fmt: str, framework: str, quant: str) -> None:
    rec = Record(kind="export", model=MODEL, status="ok", source=source, path=path, format=fmt,
                 framework=framework, quantization=quant, artifact=str(out.relative_to(root)),
                 artifact_sha256=sha256_file(out), info={"fixture": True})
    write_atomic(out.with_name(out.stem + ".record.json"), rec.to_json())


def make_tflite(folder: Path, root: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.keras.utils.set_random_seed(0)
    m = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1), batch_size=1),
        tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(10),
    ])
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    out = folder / "keras__tflite_fp32.tflite"
    write_atomic(out, conv.convert())
    record(out, root, "keras", "tflite_fp32", "tflite", "tensorflow", "fp32")

    calib = inputs(64, 1).transpose(0, 2, 3, 1)
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    out = folder / "keras__tflite_int8.tflite"
    write_atomic(out, conv.convert())
    record(out, root, "keras", "tflite_int8", "tflite", "tensorflow", "int8")


def make_pte(folder: Path, root: Path) -> None:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()
    example = (torch.from_numpy(inputs(1, 2)),)

    def lower(model, name: str, quant: str) -> None:
        ep = torch.export.export(model, example)
        prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
        out = folder / f"torch__{name}.pte"
        write_atomic(out, prog.buffer)
        record(out, root, "torch", name, "pte", "pytorch", quant)

    lower(m, "et_xnnpack_fp32", "fp32")
    try:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        q = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(m, example).module(), q)
        calib = inputs(64, 1)
        for i in range(len(calib)):
            prepared(torch.from_numpy(calib[i:i + 1]))
        lower(convert_pt2e(prepared), "et_xnnpack_int8", "int8")
    except ImportError as e:  # the quantizer moved between releases: fp32 still makes a fixture
        print(f"make_fixtures: no int8 .pte fixture ({e})", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_root", type=Path)
    ap.add_argument("--only", choices=["tflite", "pte"])
    a = ap.parse_args()
    root = a.out_root.resolve()
    folder = root / "artifacts" / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    save_npz(folder / "train" / "eval.npz", x=inputs(32, 3))
    if a.only in (None, "tflite"):
        make_tflite(folder, root)
    if a.only in (None, "pte"):
        make_pte(folder, root)


if __name__ == "__main__":
    main()
