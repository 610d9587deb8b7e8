"""The iOS choice rule: a verified Core AI file first, --prefer among .aimodel files alone; else the
fallback with each .aimodel's status in the reason (records made here, the rule is pure)."""
from __future__ import annotations

from pipeline.package import choose
from pipeline.schema import Record


def _cand(path, fmt, quant, size, p50, status="ok", runtime=None):
    rt = runtime or choose.PLATFORMS["ios"][fmt]
    exp = Record(kind="export", model="m", source="torch", path=path, format=fmt, quantization=quant, status="ok",
                 metrics={"size_bytes": size})
    bench = [Record(kind="bench", model="m", source="torch", path=path, format=fmt, runtime=rt, profile="big-core",
                    status="ok", metrics={"latency_p50_ms": p50})]
    return choose.Candidate(exp, artifact=None, checks={rt: choose.Check(status, "" if status == "ok" else
                                                                         "SQNR 3 dB < 15 dB", {"sqnr_db": 40.0})},
                            bench=tuple(bench))


def test_verified_aimodel_wins_over_a_faster_tflite():
    cands = [_cand("tflite_fp32", "tflite", "fp32", 4000, 0.01), _cand("coreai_fp32", "aimodel", "fp32", 8000, 4.0),
             _cand("coreai_w8", "aimodel", "int8_weights", 3000, 4.2)]
    ch = choose.pick(cands, "ios", "balanced", "big-core")
    assert ch.candidate.name == "coreai_w8" and ch.runtime == "coreai"
    assert ".aimodel first" in ch.reason and "1 verified LiteRT/ExecuTorch file(s) not compared" in ch.reason
    # Android never ships a .aimodel
    assert choose.pick(cands, "android", "balanced", "big-core").candidate.name == "tflite_fp32"


def test_no_verified_aimodel_falls_back_and_says_why():
    cands = [_cand("tflite_fp32", "tflite", "fp32", 4000, 0.01),
             _cand("coreai_w4", "aimodel", "int4_weights", 2000, 4.0, status="mismatch")]
    ch = choose.pick(cands, "ios", "balanced", "big-core")
    assert ch.candidate.name == "tflite_fp32"
    assert "No .aimodel is verified here" in ch.reason and "coreai_w4: mismatch (SQNR 3 dB < 15 dB)" in ch.reason
