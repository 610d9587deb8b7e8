"""Verification runs the artifacts of one runtime in one worker; a file its runtime rejects costs only
its own result (real runtimes, the digits artifacts)."""
from __future__ import annotations

import numpy as np

from pipeline.artifact import resolve
from pipeline.package import verify


def test_artifacts_of_a_runtime_go_together_and_a_bad_file_costs_only_its_result(digits_exports, tmp_path):
    fp32 = resolve(digits_exports[("keras", "tflite_fp32")].artifact)
    pte = resolve(digits_exports[("torch", "et_xnnpack_fp32")].artifact)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + bytes(200))
    x = np.random.default_rng(0).standard_normal((3, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", in_0=x)
    np.savez(tmp_path / "samples_t.npz", in_0=np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    got = verify.run_many([(fp32, "litert"), (bad, "litert"), (fp32, "litert")], tmp_path / "samples.npz",
                          None, tmp_path / "work")
    assert [r["status"] for r in got] == ["ok", "failed", "ok"], got
    assert "cannot load it" in got[1]["error"]
    assert got[0]["outputs"][0].shape == (3, 10) and np.array_equal(got[0]["outputs"][0], got[2]["outputs"][0])
    pte_res = verify.run(pte, "executorch", tmp_path / "samples_t.npz", None, tmp_path / "work")
    assert pte_res["status"] == "ok" and pte_res["outputs"][0].shape == (3, 10)
    assert not list((tmp_path / "work").glob("mb-verify-*"))     # its temp folder is gone
