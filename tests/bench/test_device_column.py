"""The emulated ARM64 column of the bench (pipeline/bench/device.py) on the digits pipeline artifacts.

Needs the emulated device (`make device`, which CI builds before `make test`); without it these skip
with the device's own reason, except the cases that check what happens when there is no device.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from pipeline.bench import device, harness
from pipeline.schema import read_records

TRIVIAL = ROOT / "pipeline" / "bench" / "data" / "trivial.tflite"


def _device_or_skip():
    dev, why = device._device_module().Device.load()
    if dev is None:
        pytest.skip(why)
    return dev


@pytest.fixture(scope="module")
def pair_items(digits_exports):
    """The Keras twin's fp32 / full-int8 .tflite pair, as the bench hands it to the device column."""
    from conftest import TEST_ARTIFACTS
    recs = [digits_exports[("keras", "tflite_fp32")], digits_exports[("keras", "tflite_int8")]]
    return device.items_from_targets(harness.targets_from_exports(recs, TEST_ARTIFACTS), TEST_ARTIFACTS)


def _by(recs):
    return {(r.path, r.profile): r for r in recs}


def test_pair_on_both_cores_with_parity_and_counts(pair_items, tmp_path):
    _device_or_skip()
    first = _by(device.run(pair_items, tmp_path / "a", log=lambda m: None))
    assert len(first) == 4
    for r in first.values():
        assert r.kind == "device" and r.device == "emulated-arm64" and r.runtime == "litert"
        assert r.status == "ok", r.error
        assert r.metrics["net_instructions_per_inference"] > 0
        assert r.metrics["top1_agreement"] == 1.0
    # deterministic: a second run in a fresh cache counts the same instructions
    again = _by(device.run(pair_items, tmp_path / "b", log=lambda m: None))
    for k, r in first.items():
        assert again[k].metrics["guest_instructions_per_inference"] == r.metrics["guest_instructions_per_inference"]
    # dotprod matters: int8 / fp32 is cheaper on the Armv8.2 core than on the Armv8.0 one
    ratio = {core: first[("tflite_int8", core)].metrics["net_instructions_per_inference"]
             / first[("tflite_fp32", core)].metrics["net_instructions_per_inference"]
             for core in ("neoverse-n1", "cortex-a53")}
    assert ratio["neoverse-n1"] < ratio["cortex-a53"], ratio
    # cached: a warm run reads the records back without the guest
    warm = device.run(pair_items, tmp_path / "a", log=lambda m: pytest.fail(f"guest ran on a warm cache: {m}"))
    assert _by(warm).keys() == first.keys()


def test_no_device_and_unbuildable_device(tmp_path):
    common = ["--profiles", "big-core", "--no-peer", "--no-op-profile", "--min-runs", "5", "--min-seconds", "0", "--ci-pct", "0"]
    env = dict(os.environ, DEVICE_DIR=str(tmp_path / "nowhere"))
    p = subprocess.run([sys.executable, "-m", "pipeline", "--results", str(tmp_path / "r1"), "bench", str(TRIVIAL),
                        *common], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    dev = [r for r in read_records(tmp_path / "r1" / "results.jsonl") if r.kind == "device"]
    assert {r.profile for r in dev} == set(device.CORES)
    assert all(r.status == "skipped" and "emulated device not built" in r.error for r in dev), dev
    p = subprocess.run([sys.executable, "-m", "pipeline", "--results", str(tmp_path / "r2"), "bench", str(TRIVIAL),
                        *common, "--no-device"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0
    assert not [r for r in read_records(tmp_path / "r2" / "results.jsonl") if r.kind == "device"]


def test_aimodel_is_skipped_with_its_reason(digits_exports, tmp_path):
    """Core AI files get device records `skipped` on every core, with the reason (built device or not)."""
    from conftest import TEST_ARTIFACTS
    items = device.items_from_targets(harness.targets_from_exports([digits_exports[("torch", "coreai_fp32")]],
                                                                   TEST_ARTIFACTS), TEST_ARTIFACTS)
    assert [it.skip for it in items] == [device.NOT_ON_DEVICE["aimodel"][1]]
    recs = device.run(items, tmp_path, log=lambda m: pytest.fail(f"the guest ran a Core AI file: {m}"))
    assert {r.profile for r in recs} == set(device.CORES)
    assert all(r.status == "skipped" and r.runtime == "coreai" and "Core AI" in r.error for r in recs), recs


def test_a_device_mismatch_carries_its_evidence(tmp_path):
    """The guest differing from the host: where, by the bound the device judges with, and the file's facts
    (no guest needed: the comparison and the explanation run on the host)."""
    import numpy as np
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(16, 1)
    np.savez(tmp_path / "in.npz", x=x)
    it = device.Item({"format": "tflite"}, TRIVIAL, tmp_path / "in.npz", "fp32")
    host, guest = x + 1, x + 1
    guest[[3, 12]] += 0.5
    metrics, failed = device.compare({"y": host}, {}, {"y": guest}, "fp32")
    assert failed
    info = {}
    device._explain(info, it, host, guest, metrics)
    ev = info["evidence"]
    assert ev["differ"] == 2 and ev["map"] == "element" and [p["at"] for p in ev["pairs"]] == [[3, 0], [12, 0]]
    assert info["file"]["operators"] == ["ADD"], info["file"]
