"""Bring your own model with files made by the frameworks' own tools (scripts/make_byom_models.py),
benchmarked with the real runtimes: multiple inputs/outputs, uint8/float16 inputs, dynamic batch."""
from __future__ import annotations

from pathlib import Path

import pytest


from pipeline.bench import harness as bench
from pipeline.bench import profiles



CFG = bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, repeats=2, peer=False, timeout_s=300.0)


def _run(path, runtime, tmp_path, shapes=()):
    t = bench.byom_target(path, tuple(tuple(s) for s in shapes))
    return bench.measure_one(t, runtime, profiles.get("big-core"), CFG, tmp_path, want_outputs=True).record


@pytest.mark.parametrize("name,runtime,in_dtypes,out_shapes", [
    ("two_in_two_out.tflite", "litert", {"float32"}, [[1, 1], [1, 3]]),
    ("two_in_two_out.tflite", "tflite_runtime", {"float32"}, [[1, 1], [1, 3]]),
    ("uint8_quant.tflite", "litert", {"uint8"}, [[1, 4]]),
    ("float16_input.tflite", "litert", {"float16"}, [[1, 2]]),
    ("two_inputs.pte", "executorch", {"float32"}, [[1, 2]])])
def test_byom_inputs_outputs_and_dtypes(byom_dir, tmp_path, name, runtime, in_dtypes, out_shapes):
    r = _run(byom_dir / name, runtime, tmp_path)
    assert r.status == "ok", r.error
    assert {i["dtype"] for i in r.info["inputs"]} == in_dtypes
    assert sorted(r.info["output_shapes"]) == out_shapes
    assert not r.info["outputs_have_nan_or_inf"]
    # a compatibility runtime (the old tflite_runtime) gets `other_repeats` steady runs, the others `repeats`
    repeats = CFG.other_repeats if runtime in CFG.one_profile_runtimes else CFG.repeats
    assert r.metrics["latency_p50_ms"] > 0 and r.metrics["runs"] >= CFG.min_runs * repeats == 20 * repeats


def test_byom_dynamic_batch_resized_with_shape(byom_dir, tmp_path):
    r = _run(byom_dir / "dynamic_batch.tflite", "litert", tmp_path, [(4, 16)])
    assert r.status == "ok", r.error
    assert r.info["inputs"][0]["shape"] == [4, 16] and r.info["inputs"][0]["shape_signature"] == [-1, 16]
    assert r.info["output_shapes"] == [[4, 2]]


@pytest.mark.parametrize("name,shapes,message", [
    ("dynamic_batch.tflite", [], "dynamic_batch.tflite: input .* has a dynamic dimension \\[-1, 16\\]"),
    ("dynamic_batch.tflite", [(4, 15)], "dynamic_batch.tflite: --shape 4,15 does not fit input"),
    ("needs_shape.ptl", [], "needs_shape.ptl: the model file carries no input shapes")])
def test_byom_shape_errors_name_the_file(byom_dir, tmp_path, name, shapes, message):
    import re
    runtime = "lite_interpreter" if name.endswith(".ptl") else "litert"
    r = _run(byom_dir / name, runtime, tmp_path, shapes)
    assert r.status == "failed" and re.search(message, r.error), r.error


def test_byom_ptl_with_shape(byom_dir, tmp_path):
    r = _run(byom_dir / "needs_shape.ptl", "lite_interpreter", tmp_path, [(1, 10)])
    assert r.status == "ok", r.error
    assert r.info["output_shapes"] == [[1, 3]]
