"""Per-layer int8 error tables: the rows name layers that exist in the model, and a deliberately broken
calibration (one layer's observed range shrunk 100x) shows up as that layer's error.

Real converters/quantizers throughout (TFLite QuantizationDebugger, PT2E numeric debugger). Only the
trained digits twins are needed (same cache folder as the shared fixtures), not the exported artifacts.
"""
from __future__ import annotations

import pytest

import models
from pipeline.quant import debug as qd
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
    good, _ = qd.et_layer_errors(tm, calib, x)
    bad, _ = qd.et_layer_errors(tm, calib, x, shrink={BROKEN: SHRINK})
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


def test_scopes_resolve_trace_suffix_ambiguity():
    # tensor names as the converter writes them for mobilenet_v2 (Keras 3 trace): layer `add` traces
    # as scope `add_1`, layer `add_1` as `add_1_2`; `batchnorm/add_1` is an op inside a BN layer
    names = ["stem", "stem_bn", "re_lu", "blocks_2_project", "blocks_2_project_bn", "add", "re_lu_1",
             "blocks_4_project", "blocks_4_project_bn", "add_1", "add_2"]
    tensors = ["m_1/re_lu_1/Relu6;m_1/stem_bn_1/batchnorm/add_1;m_1/stem_1/convolution",
               "m_1/blocks_2_project_bn_1/batchnorm/add_1;m_1/blocks_2_project_1/convolution",
               "m_1/add_1/Add", "m_1/re_lu_1_2/Relu6",
               "m_1/blocks_4_project_bn_1/batchnorm/add_1;m_1/blocks_4_project_1/convolution",
               "m_1/add_1_2/Add", "m_1/add_2_1/Add", "StatefulPartitionedCall_1:0"]
    scopes = qd.resolve_scopes(tensors, names)
    got = [qd.layers_in_tensor_name(t, names, scopes)[:1] for t in tensors]
    assert got == [["stem"], ["blocks_2_project"], ["add"], ["re_lu_1"], ["blocks_4_project"], ["add_1"],
                   ["add_2"], []], got


def test_tflite_rows_on_residual_model_follow_the_layers():
    """A tiny residual Keras model whose layer names collide with trace-suffixed scopes (add/add_1,
    re_lu/re_lu_1): every quantized op's row names the layer that produced it, in model order."""
    import keras
    import numpy as np
    from keras import layers
    inp = keras.Input((8, 8, 4), batch_size=1)
    x = layers.ReLU(name="re_lu")(layers.Conv2D(4, 3, padding="same", name="c1")(inp))
    x = layers.Add(name="add")([x, layers.Conv2D(4, 1, name="c2")(x)])
    x = layers.ReLU(name="re_lu_1")(x)
    x = layers.Add(name="add_1")([x, layers.Conv2D(4, 1, name="c3")(x)])
    out = layers.Dense(3, name="fc")(layers.GlobalAveragePooling2D(name="gap")(x))
    km = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(8, 8, 8, 4)).astype(np.float32)
    dbg, names = qd.tflite_debugger(km, data, data[:2])
    rows = [(r.layer, r.op) for r in qd.tflite_layer_errors(dbg, names)]
    expected_ops = {"c1": "CONV_2D", "c2": "CONV_2D", "add": "ADD", "re_lu_1": "RELU", "c3": "CONV_2D",
                    "add_1": "ADD", "gap": "MEAN", "fc": "FULLY_CONNECTED"}
    got = {layer: op for layer, op in rows}
    assert len(got) == len(rows), f"two ops named after one layer: {rows}"
    wrong = {k: (v, got.get(k)) for k, v in expected_ops.items() if k in got and got[k] != v}
    assert not wrong, f"layer -> (expected op, got op): {wrong}; rows {rows}"
    assert {"c1", "c2", "add", "c3", "add_1", "fc"} <= set(got), f"rows {rows}"
    assert [layer for layer, _ in rows] == [n for n in names if n in got], f"rows out of model order: {rows}"


def test_detection_model_is_a_clear_error_not_a_crash(tmp_path):
    """MTCNN nets (task detection: no labels, nothing reconstructed) have no quality unit for the plans."""
    import pytest
    from pipeline.quant import recover
    with pytest.raises(ValueError, match="task 'detection' has no quality measure"):
        recover.run("mtcnn_pnet", tmp_path, ensure_trained=False)


@pytest.mark.slow   # a whole quant-debug run with its recovery plans (~1-2 min): make test-slow
def test_quant_debug_lines_count_every_step_to_the_end(digits_trained, digits_exports):
    import re
    from pipeline.quant import recover
    lines = []
    recover.run("digits_cnn", TEST_ARTIFACTS, samples=SAMPLES, log=lines.append, ensure_trained=False, force=True)
    steps = [ln for ln in lines if re.match(r"\[quant-debug \d+/\d+", ln)]
    counts = [tuple(map(int, re.match(r"\[quant-debug (\d+)/(\d+)", ln).groups())) for ln in steps]
    assert len(steps) > 10, lines      # 4 int8 artifacts x (measure + table) and the plans of both stacks
    assert [k for k, _ in counts] == list(range(1, len(steps) + 1)), steps
    # the total is never under-announced: an upper bound until the tables fix the plans, then exact
    assert counts[-1][1] == len(steps) and all(n >= len(steps) for _, n in counts), counts
    assert all(" left] " in ln for ln in steps[:-1]) and " left]" not in steps[-1], steps
    assert any("executorch int8_per_tensor" in ln for ln in steps) and any("tflite int16x8" in ln for ln in steps)
    # the plain int8 plans are made by the registry's own path functions: the .pte is the shipped file's
    # bytes; the .tflite computes what the shipped one computes (its tensor names carry the trace
    # suffixes of the conversions that went before it in this process)
    import numpy as np

    from pipeline import fsutil, runtimes
    from pipeline.artifact import resolve
    plans = TEST_ARTIFACTS / "digits_cnn" / "quant_debug"
    assert fsutil.sha256_file(plans / "torch__et_xnnpack_int8.pte") == \
        digits_exports[("torch", "et_xnnpack_int8")].artifact_sha256
    rt, x = runtimes.get("litert"), models.get("digits_cnn").to_keras(digits_trained["x"][:SAMPLES])
    mine, ref = rt.load(plans / "keras_tw__tflite_int8.tflite", 1), \
        rt.load(resolve(digits_exports[("keras_tw", "tflite_int8")].artifact), 1)
    for i in range(len(x)):
        np.testing.assert_array_equal(rt.run(mine, [x[i:i + 1]])[0], rt.run(ref, [x[i:i + 1]])[0])
