"""`python -m pipeline package ./my_lm/ --prompts prompts.txt` end to end on a tiny random Llama folder:
every generative export path (ExecuTorch, LiteRT, ONNX, Core AI through the registry's functions), parity against
the folder's own model, the per-token figures, the bound probes, and bundles that carry the tokenizer,
the cache layout and the entry points. Slow: nine exports (ExecuTorch's lowering dominates)."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.package.usermodels import package

tiny_lm = pytest.importorskip("tests.generative.tiny_lm")
pytest.importorskip("models.lm_config", reason="the generative tier (branch i26-llm-model) is not merged yet")

PROMPTS = "def greedy(prompt):\nimport numpy as np\nclass Session:\nthe cache in and out\n"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm-package")
    folder = tmp / "my_lm"
    shutil.copytree(tiny_lm.hf_folder(seed=0), folder)
    (tmp / "prompts.txt").write_text(PROMPTS)
    rc = package(tmp, str(folder), "--prompts", str(tmp / "prompts.txt"))
    return rc, tmp / "dist" / "my_lm", tmp


@pytest.mark.slow
def test_bundles_carry_the_model_tokenizer_cache_layout_and_entry_points(bundle):
    rc, dest, _ = bundle
    assert rc == 0
    for plat in ("android", "ios"):
        man = json.loads((dest / plat / "manifest.json").read_text())
        assert man["kind"] == "generative" and man["parity"]["status"] == "ok"
        assert (dest / plat / man["artifact"]["file"]).exists() and (dest / plat / "tokenizer.json").is_file()  # .aimodel: a folder
        gen = man["generation"]
        assert gen["convention"] in ("static_cache", "cache_io", "coreai_state") and gen["entry_points"]["decode"]
        assert gen["signatures"] and gen["how_to_run"] and man["bounds"]["context"] == tiny_lm.CONTEXT
        assert {p["probe"] for p in man["bounds"]["what_the_runtime_does"]} == {"prefill", "context"}
        prof = man["measured"]["profiles"]["big-core"]
        assert prof["ttft_ms"] > 0 and prof["decode_tokens_per_s"] > 0 and prof["peak_rss_mb"] > 0
        assert man["prompts"]["prompts"] == 4 and man["tokenizer"]["vocab"] == tiny_lm.CONFIG["vocab_size"]
        readme = (dest / plat / "README.md").read_text()
        assert "## Run it" in readme and "## Bounds" in readme


@pytest.mark.slow
def test_every_path_was_measured_and_judged(bundle):
    rc, dest, _ = bundle
    recs = [json.loads(ln) for ln in (dest / "records.jsonl").read_text().splitlines()]
    exports = {r["path"]: r["status"] for r in recs if r["kind"] == "export"}
    assert set(exports) == {"et_llm_xnnpack_fp32", "et_llm_xnnpack_8da4w", "litert_llm_fp32",
                            "litert_llm_dynamic_int8", "onnx_llm_fp32", "onnx_llm_dynamic_int8",
                            "coreai_llm_fp32", "coreai_llm_w8", "coreai_llm_w4"}
    bench = {r["path"]: r for r in recs if r["kind"] == "bench"}
    for path, status in exports.items():
        if status == "ok":
            assert bench[path]["status"] in ("ok", "mismatch"), bench[path]["error"]
    for path in ("et_llm_xnnpack_fp32", "litert_llm_fp32", "onnx_llm_fp32", "coreai_llm_fp32"):
        assert bench[path]["status"] == "ok" and bench[path]["metrics"]["greedy_identical_share"] == 1.0
    report = (dest / "report.md").read_text()
    assert "Dynamic shapes" in report and "What to ship (generative)" in report


@pytest.mark.slow
def test_a_second_run_reuses_the_exports(bundle, capsys):
    _, dest, tmp = bundle
    capsys.readouterr()
    assert package(tmp, str(tmp / "my_lm"), "--prompts", str(tmp / "prompts.txt")) == 0
    out = capsys.readouterr().out
    assert out.count(": up to date") == 9 and "reference(s) computed" not in out
