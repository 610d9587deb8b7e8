"""Compute cost of a model: FLOPs/MACs of one batch-1 forward pass and the parameter count.

    .venv/bin/python -c "from pipeline import cost; import models; print(cost.model_cost(models.get('digits_cnn')))"

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` on the eager PyTorch twin (weights do not
change the count, so the untrained build is used). It counts the heavy operators (convolutions,
matmuls, attention); elementwise ops, pooling and normalisation are not counted, so this is the
usual "MACs x 2" figure, not every arithmetic instruction. Achieved GFLOP/s of an artifact =
these FLOPs / its p50 latency (fp32 FLOPs also for quantized artifacts: same work, other precision).
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _cost(name: str) -> tuple[float, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import models
    spec = models.get(name)
    torch.manual_seed(0)
    model = spec.build_torch().eval()
    x = torch.zeros((1, *spec.input_shape), dtype=torch.float32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops()), float(sum(p.numel() for p in model.parameters()))


def model_cost(spec) -> dict[str, float]:
    flops, params = _cost(spec.name)
    return {"flops": flops, "macs": flops / 2, "params": params}


def achieved(metrics: dict[str, float]) -> dict[str, float]:
    """GFLOP/s at the p50 latency, when both are known."""
    if metrics.get("flops") and metrics.get("latency_p50_ms"):
        return {"gflops_per_s": metrics["flops"] / (metrics["latency_p50_ms"] * 1e-3) / 1e9}
    return {}


_PEAK_SCRIPT = """
import json, time, numpy as np
from threadpoolctl import threadpool_limits
a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
out = {}
for label, n in (("1_core", 1), ("all_cores", None)):
    with threadpool_limits(limits=n):
        a @ a
        ts = []
        for _ in range(5):
            t = time.perf_counter(); a @ a; ts.append(time.perf_counter() - t)
    out[label] = 2 * 1024 ** 3 / min(ts) / 1e9
print(json.dumps(out))
"""


def cpu_peak_gflops() -> dict[str, float]:
    """This CPU's float32 matmul throughput (numpy/OpenBLAS, 1024^3, best of 5), 1 core and all cores:
    the physical limit to read each artifact's achieved GFLOP/s against. Measured in a child process
    with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset together (this machine sets them for old OpenBLAS
    builds; they slow a current one), which changes nothing for the benchmark workers."""
    import json
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    try:
        p = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], env=env, capture_output=True, text=True,
                           timeout=120)
        return {f"cpu_peak_gflops_{k}": float(v) for k, v in json.loads(p.stdout).items()}
    except (subprocess.TimeoutExpired, ValueError):
        return {}


_CEILING_SCRIPT = """
import json, os, time, numpy as np
from ai_edge_litert.interpreter import Interpreter
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
out = {}
for prec in ("fp32", "int8"):
    it = Interpreter(model_path=os.path.join(DATA, f"ceiling_{prec}.tflite"), num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.ones(d["shape"], d["dtype"]))
    _, h, w, cin = d["shape"]                                  # one 1x1 convolution, NHWC
    flops = 2 * h * w * cin * it.get_output_details()[0]["shape"][-1]
    for _ in range(10):
        it.invoke()
    ts = []
    for _ in range(100):
        t = time.perf_counter(); it.invoke(); ts.append(time.perf_counter() - t)
    out[prec] = flops / float(np.median(ts)) / 1e9
print(json.dumps(out))
"""


def xnnpack_conv_ceiling() -> dict[str, float]:
    """GOP/s of one large 1x1 convolution (pipeline/bench/data/ceiling_{fp32,int8}.tflite) in LiteRT/XNNPACK on
    one pinned core: how fast int8 kernels can be against fp32 ones on this CPU, whatever the model."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    code = f"DATA = {str(Path(__file__).parent / 'data')!r}\n" + _CEILING_SCRIPT
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        return {f"cpu_xnnpack_conv_{k}_gops": float(v) for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items()}
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return {}
