"""The int8 vs fp32 section and the ExecuTorch vs LiteRT section: targets judged from the records, the
reason named when one is missed; the .tflite anatomy on a real int8 file."""
from __future__ import annotations

import pytest

from pipeline.bench import anatomy
from pipeline.report import int8 as report_int8
from pipeline.report import stacks as report_stacks
from pipeline.report.view import build
from pipeline.schema import Record


def _rec(source, path, runtime, quant, size, p50, acc, ops, fmt="tflite", framework="tensorflow", **extra):
    m = {"size_bytes": float(size), "latency_p50_ms": p50, "accuracy": acc, "gflops_per_s": 1.0 / p50, **extra}
    return Record(kind="bench", model="m", status="ok", source=source, path=path, runtime=runtime,
                  profile="big-core", framework=framework, quantization=quant, format=fmt, metrics=m,
                  info={"op_profile": {"ops": [{"op": k, "ms": v, "share": 0.0} for k, v in ops.items()]}})


def test_int8_targets_and_reasons():
    f32 = _rec("keras", "tflite_fp32", "litert", "fp32", 400_000, 0.100, 0.950,
               {"CONV_2D #1": 0.040, "PAD #0": 0.010}, anatomy_float32_bytes=396_000.0)
    i8 = _rec("keras", "tflite_int8", "litert", "int8", 200_000, 0.150, 0.930,
              {"CONV_2D #1": 0.090, "PAD #0": 0.010, "QUANTIZE #5": 0.004},
              anatomy_int8_bytes=99_000.0, anatomy_quant_param_bytes=60_000.0, anatomy_per_channel_scales=5000.0,
              anatomy_int32_bytes=20_000.0, anatomy_other_bytes=21_000.0)
    text = "\n".join(report_int8.section(build([f32, i8])))
    row = next(ln for ln in text.splitlines() if ln.startswith("| m | keras__tflite_int8"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4:7] == ["2.00", "0.67", "10.0 / 6.7"], cells           # size x, speed-up x, GFLOP/s
    assert cells[8:] == ["**no**", "**no**", "**no**"], cells             # 2x < 3.5x; -2 points; slower
    assert "weights alone 4.0x" in text and "58.6 KiB of quantization parameters" in text
    # the slower operator kind is named with both times; an unchanged one is not
    assert "CONV_2D 40 -> 90 us" in text and "PAD 10 -> 10" not in text


def test_int8_meeting_every_target_has_no_reason_line():
    f32 = _rec("torch", "et_xnnpack_fp32", "executorch", "fp32", 400_000, 0.100, 0.950, {}, fmt="pte",
               framework="pytorch")
    i8 = _rec("torch", "et_xnnpack_int8", "executorch", "int8", 100_000, 0.050, 0.945, {}, fmt="pte",
              framework="pytorch")
    text = "\n".join(report_int8.section(build([f32, i8])))
    assert "| yes | yes | yes |" in text and "Why a target is missed" not in text


def test_stacks_section_ratio_and_top_ops():
    et = _rec("torch", "et_xnnpack_fp32", "executorch", "fp32", 1, 0.200, 0.9,
              {"Convolution (NHWC, F32) IGEMM #1": 0.120, "Transpose (ND, X32) #1": 0.030}, fmt="pte")
    lr = _rec("keras_tw", "tflite_fp32", "litert", "fp32", 1, 0.100, 0.9, {"CONV_2D #1": 0.080})
    text = "\n".join(report_stacks.section(build([et, lr])))
    assert "| m | fp32 | 200 | keras_tw__tflite_fp32 | 100 | 2.00 |" in text, text
    assert "Convolution IGEMM 120, Transpose 30" in text and "CONV_2D 80" in text


def test_tflite_anatomy_of_a_real_int8_file(digits_exports):
    from conftest import ROOT
    r = digits_exports[("keras", "tflite_int8")]
    a = anatomy.of(ROOT / r.artifact)
    f = anatomy.of(ROOT / digits_exports[("keras", "tflite_fp32")].artifact)
    # the int8 weights are a quarter of the fp32 weights (bias stays 32-bit in both)
    assert a["anatomy_int8_bytes"] == pytest.approx(f["anatomy_float32_bytes"] / 4, rel=0.05), (a, f)
    # per-channel: one scale per output channel of every conv/dense layer; 12 bytes each (+ the bias')
    assert a["anatomy_per_channel_scales"] >= 64 and a["anatomy_quant_param_bytes"] >= 12 * a["anatomy_per_channel_scales"]
    assert f["anatomy_quant_param_bytes"] == 0
    parts = a["anatomy_constant_bytes"] + a["anatomy_quant_param_bytes"] + a["anatomy_other_bytes"]
    assert parts == (ROOT / r.artifact).stat().st_size
    assert anatomy.of(ROOT / digits_exports[("torch", "et_xnnpack_int8")].artifact) == {}


def test_quant_section_says_why_no_plan_recovers():
    from pipeline.report import quant as report_quant

    def plan(path, drop, quant="int8"):
        return Record(kind="quant_debug", model="m", status="ok", source="torch", path=path, runtime="executorch",
                      quantization=quant, metrics={"accuracy_drop_points": drop, "size_bytes": 1e5,
                                                   "latency_p50_ms": 0.1, "accuracy": 0.9})
    layers = [{"layer": f"l{i}", "op": "linear", "sqnr_db": 12.0 + i, "mse": 0.01, "max_abs_error": 1.0}
              for i in range(4)]
    table = Record(kind="quant_debug", model="m", status="ok", source="torch", path="et_xnnpack_int8",
                   quantization="int8", info={"layers": layers, "debugger": "pt2e", "error_kind": "propagated",
                                              "debug_samples": 10})
    recs = [table, plan("et_xnnpack_int8:fp32", 0.0, "fp32"), plan("et_xnnpack_int8:int8", 2.0),
            plan("et_xnnpack_int8:int8_fp32_worst1", 1.5)]
    text = "\n".join(report_quant.section(build(recs)))
    assert "et_xnnpack_int8: no plan reaches 1" in text and "recovering 25% of it" in text, text
    assert "4 quantized layers' SQNR spans 12.0-15.0 dB" in text
    # a stack whose best plan is within 1 point gets no such line
    recs[-1] = plan("et_xnnpack_int8:int8_fp32_worst1", 0.5)
    assert "no plan reaches" not in "\n".join(report_quant.section(build(recs)))


def test_size_ratios_are_read_per_tier():
    """Toy-size int8 files are mostly fixed bytes; the section groups the ratios by the model's tier."""
    from pipeline.report.int8 import size_by_tier
    from pipeline.report.view import build as build_view
    from pipeline.schema import Record

    def rec(model, path, q, size):
        return Record(kind="bench", model=model, status="ok", source="keras", path=path, format="tflite",
                      framework="tensorflow", quantization=q, runtime="litert", profile="big-core", threads=1,
                      metrics={"size_bytes": size, "latency_p50_ms": 0.1})
    recs = [rec("digits_cnn", "tflite_fp32", "fp32", 80_000), rec("digits_cnn", "tflite_int8", "int8", 26_000),
            rec("mobilenet_v2_224", "tflite_fp32", "fp32", 8_900_000),
            rec("mobilenet_v2_224", "tflite_int8", "int8", 2_700_000)]
    v = build_view(recs)
    lines = size_by_tier(v, [(f, q) for m in ("digits_cnn", "mobilenet_v2_224") for f, q in v.int8_pairs(m)])
    rows = {ln.split("|")[1].strip(): ln for ln in lines if ln.startswith("| toy") or ln.startswith("| phone")}
    assert set(rows) == {"toy", "phone"}
    assert "| 3.08 |" in rows["toy"] and "0/1" in rows["toy"]
    assert "| 3.30 |" in rows["phone"]
