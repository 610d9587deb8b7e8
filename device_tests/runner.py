"""Run one mobile artifact with its real runtime: the same script on the host and in the guest.

    python runner.py ARTIFACT INPUTS.npz OUTPUTS.npz [--limit N] [--count-runs N]
    python runner.py --jobs JOBS.json     (several artifacts in one process: ExecuTorch's
                                           import of torch costs minutes under emulation)

Reads `x` from INPUTS.npz (PyTorch layout: NCHW for images), runs every sample (up to --limit)
through the artifact and writes OUTPUTS.npz:
    y        float outputs of the first output tensor (dequantized when the output is quantized)
    y_q      raw integer outputs, only for quantized outputs
    meta     JSON: runtime, input/output dtypes and quantization, layout used
Only numpy and the runtime are imported, so this runs on the emulated device as it is.

Quantized (int8/uint8) inputs take the float input quantized with that input's scale and zero
point, rounded to nearest (never truncated) and clipped to the integer range.

With --count-runs N (> 0) the first sample is run once more as warm-up, then N times between two
markers (lseek(-1, 0x4d42<id>, 0): EBADF, harmless; the insn_count QEMU plugin records its
instruction count at each): per-inference cost = (count[2] - count[1]) / N; job j of a --jobs
file uses markers 2j+1 and 2j+2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

MARKER_MAGIC = 0x4D420000


def marker(i: int) -> None:
    try:
        os.lseek(-1, MARKER_MAGIC | i, os.SEEK_SET)
    except OSError:
        pass


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def to_layout(x: np.ndarray, shape) -> tuple[np.ndarray, str]:
    """x is NCHW (PyTorch); a model whose input is NHWC (Keras) gets it transposed."""
    shape = tuple(int(s) for s in shape)
    if x.ndim == 4 and tuple(x.shape[1:]) != shape[1:] and tuple(x.transpose(0, 2, 3, 1).shape[1:]) == shape[1:]:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "NHWC"
    if tuple(x.shape[1:]) != shape[1:]:
        raise ValueError(f"input of shape {x.shape} does not fit the model input {shape}")
    return x, "NCHW" if x.ndim == 4 else "as-is"


class LiteRT:
    name = "litert"

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter
        self.it = Interpreter(model_path=path, num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        self.input_shape = self.inp["shape"]
        self.batch = int(self.inp["shape"][0])
        self.in_q = self._q(self.inp)
        self.out_q = self._q(self.out)

    @staticmethod
    def _q(d):
        scale, zp = d["quantization"]
        if np.issubdtype(d["dtype"], np.integer) and scale:
            return {"scale": float(scale), "zero_point": int(zp), "dtype": np.dtype(d["dtype"]).name}
        return None

    def set_input(self, xb: np.ndarray) -> None:
        if self.in_q:
            xb = quantize(xb, self.inp["dtype"], self.in_q["scale"], self.in_q["zero_point"])
        self.it.set_tensor(self.inp["index"], xb.astype(self.inp["dtype"], copy=False))

    def invoke(self) -> None:
        self.it.invoke()

    def output(self) -> np.ndarray:
        return self.it.get_tensor(self.out["index"]).copy()

    def info(self) -> dict:
        return {"input_dtype": np.dtype(self.inp["dtype"]).name, "output_dtype": np.dtype(self.out["dtype"]).name,
                "input_quantization": self.in_q, "output_quantization": self.out_q}


class ExecuTorch:
    name = "executorch"
    in_q = out_q = None  # XNNPACK int8 .pte files take and return float tensors

    def __init__(self, path: str):
        import torch
        from executorch.runtime import Runtime
        torch.set_num_threads(1)
        try:  # one XNNPACK worker thread: deterministic instruction counts
            from executorch.extension.pybindings import portable_lib
            portable_lib._unsafe_reset_threadpool(1)
        except (ImportError, AttributeError):
            pass
        self.torch = torch
        self.method = Runtime.get().load_program(path).load_method("forward")
        meta = self.method.metadata.input_tensor_meta(0)
        self.input_shape = list(meta.sizes())
        self.batch = int(self.input_shape[0])
        self.args = None
        self.result = None

    def set_input(self, xb: np.ndarray) -> None:
        self.args = [self.torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32))]

    def invoke(self) -> None:
        self.result = self.method.execute(self.args)

    def output(self) -> np.ndarray:
        return self.result[0].detach().numpy().copy()

    def info(self) -> dict:
        return {"input_dtype": "float32", "output_dtype": str(self.result[0].dtype).replace("torch.", "")}


def run_one(artifact: str, inputs: str, outputs: str, limit: int = 16, count_runs: int = 0,
            marker_base: int = 0) -> None:
    x = np.load(inputs)["x"][:limit].astype(np.float32)
    rt = {".tflite": LiteRT, ".pte": ExecuTorch}[os.path.splitext(artifact)[1]](artifact)
    x, layout = to_layout(x, rt.input_shape)
    ys = []
    for i in range(0, len(x) - len(x) % rt.batch, rt.batch):
        rt.set_input(x[i:i + rt.batch])
        rt.invoke()
        ys.append(rt.output())
    y_raw = np.concatenate(ys)
    if count_runs > 0:
        rt.set_input(x[: rt.batch])
        invoke = rt.invoke
        invoke()
        marker(marker_base + 1)
        for _ in range(count_runs):
            invoke()
        marker(marker_base + 2)
    out = {"y": y_raw.astype(np.float32)}
    if rt.out_q:
        out["y_q"] = y_raw
        out["y"] = ((y_raw.astype(np.float32) - rt.out_q["zero_point"]) * rt.out_q["scale"]).astype(np.float32)
    meta = dict(rt.info(), runtime=rt.name, layout=layout, samples=int(len(y_raw)), batch=rt.batch,
                count_runs=count_runs, marker_base=marker_base)
    out["meta"] = np.array(json.dumps(meta))
    with open(outputs + ".tmp", "wb") as f:
        np.savez(f, **out)
    os.replace(outputs + ".tmp", outputs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("artifact", nargs="?")
    ap.add_argument("inputs", nargs="?")
    ap.add_argument("outputs", nargs="?")
    ap.add_argument("--limit", type=int, default=16, help="at most this many samples")
    ap.add_argument("--count-runs", type=int, default=0)
    ap.add_argument("--jobs", help="JSON list of {artifact, inputs, outputs, limit, count_runs}")
    a = ap.parse_args(argv)
    if a.jobs:
        with open(a.jobs) as f:
            jobs = json.load(f)
        failed = 0
        for j, job in enumerate(jobs):
            try:
                run_one(marker_base=2 * j, **job)
            except Exception as e:  # one bad artifact must not hide the others' results
                failed += 1
                print(f"runner: job {j} ({job['artifact']}) failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1 if failed else 0
    if not (a.artifact and a.inputs and a.outputs):
        ap.error("ARTIFACT INPUTS OUTPUTS or --jobs")
    run_one(a.artifact, a.inputs, a.outputs, a.limit, a.count_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
