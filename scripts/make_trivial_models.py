"""Write the one-op models the benchmark times to measure its own per-call overhead.

    .venv/bin/python scripts/make_trivial_models.py   # -> pipeline/bench/data/trivial.{tflite,pte,ptl,onnx,aimodel}

Each model adds 1 to a 1-element float32 tensor: its latency is the harness + runtime fixed cost per
call (input bind, invoke/execute, output), which the report shows beside every latency. The files are
committed (a few KiB) so the worker needs no converter at benchmark time.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
OUT = Path(__file__).resolve().parents[1] / "pipeline" / "bench" / "data"


def tflite() -> None:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def add_one(x):
        return x + 1.0
    conv = tf.lite.TFLiteConverter.from_concrete_functions([add_one.get_concrete_function()], add_one)
    (OUT / "trivial.tflite").write_bytes(conv.convert())



def torch_models() -> None:
    import torch
    from executorch.exir import to_edge

    class AddOne(torch.nn.Module):
        def forward(self, x):
            return x + 1.0
    m = AddOne().eval()
    ex = (torch.zeros(1),)
    (OUT / "trivial.pte").write_bytes(to_edge(torch.export.export(m, ex)).to_executorch().buffer)
    torch.jit.script(m)._save_for_lite_interpreter(str(OUT / "trivial.ptl"))
    torch.onnx.export(m, ex, str(OUT / "trivial.onnx"), dynamo=True, external_data=False,
                      input_names=["input"], verbose=False)
    coreai(m, ex)


def coreai(m, ex) -> None:
    """A Core AI .aimodel folder (main.mlirb, main.hash, metadata.json), through the coreai_fp32 path's steps."""
    import shutil

    import coreai_torch
    import torch
    ep = torch.export.export(m, ex).run_decompositions(coreai_torch.get_decomp_table())
    prog = coreai_torch.TorchConverter().add_exported_program(ep, input_names=["input"],
                                                              output_names=["output"]).to_coreai()
    shutil.rmtree(OUT / "trivial.aimodel", ignore_errors=True)
    prog.save_asset(OUT / "trivial.aimodel")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    tflite()
    torch_models()
    for f in sorted(OUT.glob("trivial.*")):
        print(f, sum(p.stat().st_size for p in f.rglob("*") if p.is_file()) if f.is_dir() else f.stat().st_size)
