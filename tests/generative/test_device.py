"""Instructions per decoded token on the emulated ARM64 cores: a LiteRT generative file (the registry's
litert-torch path on the tiny Llama) runs in the guest with the same Session code as on the host, its
logits match the reference and both cores give a count. Slow (an export and two emulated processes);
skipped with the reason when the device is not built."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.generative import tiny_lm
from pipeline.bench import profiles
from pipeline.bench.device import CORES, _device_module
from pipeline.generative import bench

pytest.importorskip("models.lm_config", reason="the generative tier (branch i26-llm-model) is not merged yet")


@pytest.mark.slow
def test_instructions_per_decoded_token(tmp_path, lm_folder):
    dev, why = _device_module().Device.load()
    if dev is None:
        pytest.skip(why)
    from models.lm_config import LMConfig
    from pipeline.package import lm_exports
    lm = LMConfig.from_hf(json.loads((lm_folder / "config.json").read_text()), context=tiny_lm.CONTEXT)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.zeros((1, tiny_lm.CONTEXT), np.int32))
    recs = [r for r in lm_exports.run_all(lm_folder, lm, "tiny", tmp_path / "art", "k", calib, log=lambda m: None)
            if r.path == "litert_llm_fp32"]
    assert recs[0].status == "ok", recs[0].error
    tiny_lm.heldout(tmp_path / "art", "tiny")
    targets, _ = bench.targets(recs, tmp_path / "art")
    out = bench.run(targets, profiles.BenchConfig(profiles=("big-core",)), tmp_path / "cache", device=True,
                    log=lambda m: None)
    dev_recs = {r.profile: r for r in out if r.kind == "device"}
    assert set(dev_recs) == set(CORES)
    for r in dev_recs.values():
        assert r.status == "ok", r.error
        assert r.metrics["instructions_per_decoded_token"] > 0 and r.metrics["greedy_identical_share"] == 1.0
        assert r.metrics["prefill_instructions"] > r.metrics["instructions_per_decoded_token"]
