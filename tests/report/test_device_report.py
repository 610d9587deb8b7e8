"""The report's ARM64 proxy check: instructions per host microsecond of fp32 .tflite artifacts."""
from __future__ import annotations

from pipeline.report import device
from pipeline.report.view import build
from pipeline.schema import Record


def _pair(model: str, p50_ms: float, net: float) -> list[Record]:
    ident = dict(model=model, source="keras", path="tflite_fp32", format="tflite", framework="tensorflow",
                 quantization="fp32", runtime="litert")
    return [Record(kind="bench", status="ok", profile="big-core", threads=1, metrics={"latency_p50_ms": p50_ms},
                   **ident),
            Record(kind="device", status="ok", profile="neoverse-n1", threads=1, device="emulated-arm64",
                   metrics={"net_instructions_per_inference": net}, **ident)]


def test_proxy_check_states_the_spread_and_the_band():
    within = device.proxy_check(build(_pair("a", 0.010, 150_000) + _pair("b", 0.100, 1_200_000)))
    assert "a spread of 1.2x, within the 3x band" in within[0], within
    outside = device.proxy_check(build(_pair("a", 0.010, 150_000) + _pair("b", 0.100, 300_000)))
    assert "a spread of 5.0x, outside the 3x band" in outside[0], outside
    assert device.proxy_check(build(_pair("a", 0.010, 150_000))) == []
