"""Per-layer int8 error tables: the rows name layers that exist in the model, and a deliberately broken
calibration (one layer's observed range shrunk 100x) shows up as that layer's error.

Real converters/quantizers throughout (TFLite QuantizationDebugger, PT2E numeric debugger). Only the
trained digits twins are needed (same cache folder as the shared fixtures), not the exported artifacts.
"""
from __future__ import annotations

import pytest

import models
from pipeline import quant_debug as qd
from tests.conftest import TEST_ARTIFACTS

SAMPLES = 24          # held-out samples per table: enough for stable means, cheap on 2 cores
BROKEN = "conv2"      # a middle layer: errors before it must stay low, it must stand out
SHRINK = 0.01


@pytest.fixture(scope="module")
def spec():
    return models.get("digits_cnn")


@pytest.fixture(scope="module")
def digits_trained(spec):
    from pipeline.train import load_eval, train
    train(spec, TEST_ARTIFACTS, log=lambda m: None)
    return load_eval(spec, TEST_ARTIFACTS)


@pytest.fixture(scope="module")
def tflite_tables(digits_trained, spec):
    from pipeline.train import load_keras
    km = load_keras(spec, TEST_ARTIFACTS, "keras_tw")
    calib, x = spec.to_keras(digits_trained["calib"]), spec.to_keras(digits_trained["x"][:SAMPLES])
    good, names = qd.tflite_debugger(km, calib, x)
    bad, _ = qd.tflite_debugger(km, calib, x, shrink={BROKEN: SHRINK})
    return qd.tflite_layer_errors(good, names), qd.tflite_layer_errors(bad, names), names


@pytest.fixture(scope="module")
def et_tables(digits_trained, spec):
    from pipeline.train import load_torch
    tm = load_torch(spec, TEST_ARTIFACTS)
    calib, x = digits_trained["calib"], digits_trained["x"][:SAMPLES]
    good, _ = qd.et_layer_errors(tm, calib, x, qd.xnnpack_quantizer())
    bad, _ = qd.et_layer_errors(tm, calib, x, qd.xnnpack_quantizer(), shrink={BROKEN: SHRINK})
    return good, bad, tm


def _weighted_twin_layers(tm) -> set[str]:
    # batch-norm folds into its conv in both quantizers, so it has no row of its own
    mods = dict(tm.named_modules())
    return {n.replace(".", "_") for n in qd.weighted_modules(tm) if "BatchNorm" not in type(mods[n]).__name__}


def test_tflite_rows_name_real_keras_layers(tflite_tables, et_tables):
    good, _, names = tflite_tables
    unknown = [r.layer for r in good if r.layer not in names]
    assert not unknown, f"TFLite rows not named after Keras layers: {unknown} (layers: {names})"
    missing = _weighted_twin_layers(et_tables[2]) - {r.layer for r in good}
    assert not missing, f"weighted layers with no TFLite row: {missing}; rows: {[r.layer for r in good]}"


def test_et_rows_name_real_torch_modules(et_tables):
    good, _, tm = et_tables
    modules = {n.replace(".", "_") for n, _ in tm.named_modules() if n}
    missing = _weighted_twin_layers(tm) - {r.layer for r in good}
    assert not missing, f"weighted layers with no PT2E row: {missing}; rows: {[r.layer for r in good]}"
    weighted_rows = [r for r in good if r.layer in _weighted_twin_layers(tm)]
    assert all(r.layer in modules for r in weighted_rows)
    for r in weighted_rows:
        assert 10 < r.sqnr_db < 80, f"{r.layer}: healthy int8 SQNR {r.sqnr_db:.1f} dB outside 10..80 dB"


def test_broken_calibration_is_the_top_tflite_error(tflite_tables):
    good, bad, _ = tflite_tables
    top = qd.worst(bad, 1)[0]
    by = {r.layer: r.sqnr_db for r in good}
    assert top.layer == BROKEN, (f"top error is {top.layer} ({top.sqnr_db:.1f} dB), expected {BROKEN}; "
                                 f"table: {[(r.layer, round(r.sqnr_db, 1)) for r in bad]}")
    assert by[BROKEN] - top.sqnr_db > 10, f"{BROKEN}: {by[BROKEN]:.1f} -> {top.sqnr_db:.1f} dB, expected a >10 dB drop"


def test_broken_calibration_is_where_pt2e_error_starts(et_tables):
    good, bad, _ = et_tables
    g = {r.layer: r.sqnr_db for r in good}
    order = [r.layer for r in bad]
    first_bad = next(r for r in bad if g[r.layer] - r.sqnr_db > 10)
    assert first_bad.layer == BROKEN, (f"first layer whose SQNR dropped >10 dB is {first_bad.layer}, expected "
                                       f"{BROKEN}; good {g}, broken {[(r.layer, round(r.sqnr_db, 1)) for r in bad]}")
    # the layers before it are untouched (same calibration, same quantization)
    for name in order[:order.index(BROKEN)]:
        b = next(r.sqnr_db for r in bad if r.layer == name)
        assert abs(b - g[name]) < 0.5, f"{name}: {g[name]:.2f} -> {b:.2f} dB before the broken layer"
    worst = qd.worst(bad, 1)[0].sqnr_db
    assert next(r.sqnr_db for r in bad if r.layer == BROKEN) - worst < 3, "broken layer is not among the worst"


def test_layer_names_in_tensor_names():
    names = ["conv1", "bn1", "re_lu", "blocks_0_dw", "fc"]
    assert qd.layers_in_tensor_name("functional_1/re_lu_1/Relu;functional_1/conv1_1/convolution", names) == \
        ["conv1", "re_lu"]
    assert qd.layers_in_tensor_name("functional_1/blocks_0_dw_1/depthwise1", names) == ["blocks_0_dw"]
    assert qd.layers_in_tensor_name("StatefulPartitionedCall_1:0", names) == []
