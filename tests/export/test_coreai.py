"""Core AI paths on the digits model: what each record says of its .aimodel (read from the folder
itself, pipeline/filecheck/coreai.py); parity of every path is tests/export/test_paths.py's, generated
from the registry like every other path."""
from __future__ import annotations

import pytest

COREAI = ["coreai_fp32", "coreai_fp16", "coreai_w8", "coreai_w4", "coreai_pal4"]


@pytest.mark.parametrize("path", COREAI)
def test_record_facts(digits_exports, path):
    rec = digits_exports[("torch", path)]
    assert rec.status == "ok", rec.error
    ai = rec.info["coreai"]
    assert ai["hash_ok"] and set(ai["files"]) == {"main.mlirb", "main.hash", "metadata.json"}
    assert ai["compatibility_version"].startswith("27") and "iOS" in ai["minimum_os"]
    (fn,) = ai["functions"].values()
    assert [t["name"] for t in fn["inputs"]] == ["input"] and fn["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert fn["inputs"][0]["dtype"] == ("float16" if path == "coreai_fp16" else "float32")
    assert ai["operations"].get("conv2d") == 3
    assert rec.info["runtimes"] == ["coreai"]


def test_compression_shrinks_and_says_what_it_left(digits_exports):
    size = {p: digits_exports[("torch", p)].metrics["size_bytes"] for p in COREAI}
    share = {p: digits_exports[("torch", p)].info["coreai"]["compressed_weight_share"] for p in COREAI}
    assert size["coreai_w4"] < size["coreai_w8"] < size["coreai_fp16"] < size["coreai_fp32"], size
    assert share["coreai_fp32"] == share["coreai_fp16"] == 0.0
    assert min(share["coreai_w8"], share["coreai_w4"], share["coreai_pal4"]) > 0.5, share
    pal = digits_exports[("torch", "coreai_pal4")].info["compression"]
    # the classifier's 10 output channels do not divide by the palette's group of 16: kept float, and said
    assert any("fc.weight" in m for m in pal["left_uncompressed"]), pal


def test_keras_route_and_the_executorch_delegate(digits_exports):
    for src in ("keras", "keras_tw"):
        rec = digits_exports[(src, "keras_coreai_fp32")]
        assert rec.status == "ok" and "coreai-onnx" in rec.info["converter"] and rec.info["input_layout"] == "nhwc"
    et = digits_exports[("torch", "et_coreai_fp16")]
    assert et.status == "failed" and "get_graph" in et.error
    # the skew is the toolchain's: shown once on a probe model (export/toolchain.py), and said so
    assert "probe model" in et.info["established_by"] and "executorch==" in et.info["established_by"], et.info
