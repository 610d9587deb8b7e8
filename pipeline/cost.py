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
