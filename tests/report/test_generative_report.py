"""The report's generative section from records alone: per-artifact figures, what each runtime did at
and past its bounds (an unsafe outcome called out), the pick per model, the bounds' text generated from
pipeline/parity.py; and the classic sections leave these records alone."""
from __future__ import annotations

from pipeline import parity
from pipeline.report import generative
from pipeline.report.markdown import render
from pipeline.report.view import build
from pipeline.schema import Record

GEN = {"convention": "cache_io", "context": 64, "prefill_max": 32, "prefill_lengths": [32], "vocab": 320}


def _bench(path, runtime, quant, status="ok", error="", decode=900.0, size=400e3, ppl=0.05, probes=None, profile="big-core"):
    m = {"ttft_ms": 0.6, "decode_tokens_per_s": decode, "peak_rss_mb": 50.0, "size_bytes": size, "decode_steps": 16.0,
         "sqnr_db": 40.0, "logits_sqnr_db_min": 36.0, "greedy_identical_share": 0.5, "greedy_steps_equal_min": 1.0,
         "perplexity": 10.5, "reference_perplexity": 10.0, "perplexity_increase_pct": ppl}
    return Record(kind="bench", model="tiny_lm", status=status, error=error, source="torch", path=path,
                  format="tflite", framework="pytorch", quantization=quant, runtime=runtime, profile=profile,
                  threads=1, artifact=f"artifacts/tiny_lm/torch__{path}.tflite", metrics=m,
                  info={"generation": GEN, "probes": probes or []})


PROBES = [{"probe": "context", "length": 65, "ran": True, "within": False, "sqnr_db": 31.3, "outcome": "silent_wrong",
           "harness": "model.tflite: position 64 is past the cache of 64 positions"},
          {"probe": "prefill", "length": 33, "ran": False, "within": False, "outcome": "refused",
           "error": "RuntimeError: RESHAPE failed to prepare", "harness": "a prompt of 34 tokens is outside"},
          {"probe": "prefill", "length": 1, "ran": True, "within": True, "sqnr_db": 36.0, "outcome": "ok", "harness": ""}]


def _records():
    return [_bench("litert_llm_dynamic_int8", "litert", "dynamic_int8", probes=PROBES),
            _bench("litert_llm_dynamic_int8", "litert", "dynamic_int8", decode=1500.0, profile="2-core"),
            _bench("litert_llm_fp32", "litert", "fp32", size=800e3, decode=1000.0, ppl=0.0),
            _bench("onnx_llm_dynamic_int8", "onnxruntime", "dynamic_int8", status="mismatch", size=100e3,
                   error="dynamic_int8 parity: SQNR 5.0 dB < 20 dB"),
            Record(kind="device", model="tiny_lm", status="ok", source="torch", path="litert_llm_dynamic_int8",
                   format="tflite", quantization="dynamic_int8", runtime="litert", profile="neoverse-n1", threads=1,
                   device="emulated-arm64", metrics={"instructions_per_decoded_token": 378648.0},
                   info={"generation": {"convention": "cache_io"}})]


def test_section_rows_bounds_and_pick():
    text = "\n".join(generative.section(build(_records())))
    assert text.startswith(f"## {generative.TITLE}")
    row = next(ln for ln in text.splitlines() if ln.startswith("| tiny_lm | torch__litert_llm_dynamic_int8 |"))
    assert "378,648" in row and "50% (>= 1/16)" in row and "10.50 (10.00)" in row
    assert "| 2-core: decode tok/s |" in text and "| 1,500 |" in text   # the other profile's figures
    assert "| decode at position 64 | PAST | **silent_wrong** | SQNR 31.3 dB vs the reference |" in text
    assert "| prefill of 33 | PAST | refused | RuntimeError: RESHAPE failed to prepare |" in text
    assert "Unsafe without the harness's checks" in text and "decode at position 64 (silent_wrong)" in text
    # the mismatch is never a pick; the smallest passing file is
    ship = text.split("### What to ship (generative)")[1]
    assert "onnx_llm_dynamic_int8" not in ship
    assert "smallest: `torch__litert_llm_dynamic_int8` on litert" in ship
    assert "fewest instructions per token (neoverse-n1): `torch__litert_llm_dynamic_int8`" in ship
    assert "fastest decode (host): `torch__litert_llm_fp32`" in ship
    t = parity.GENERATIVE["8da4w"]
    assert f"8da4w: logits SQNR >= {t.min_sqnr_db:g} dB" in text   # the bounds' text comes from the policy


def test_classic_sections_leave_generative_records_alone():
    exports = [Record(kind="export", model="tiny_lm", status="ok", source="torch", path=p, format="tflite",
                      quantization="fp32", artifact=f"a/{p}.tflite", info={"generation": GEN})
               for p in ("litert_llm_dynamic_int8", "litert_llm_fp32", "onnx_llm_dynamic_int8")]
    text = render(build(exports + _records()))
    assert "## tiny_lm" not in text and "### What should I ship?" not in text
    assert "## Runs on ARM64 (emulated)" not in text and generative.TITLE in text
    assert "| torch__litert_llm_fp32 | ok |" in text   # still in the support matrix


def test_the_answer_picks_a_generative_file_per_platform_on_its_per_token_cost():
    """The report top / terminal answer (picks.pick) for a generative model: among its files that passed the
    generative parity, ranked on ARM64 instructions per decoded token (the mismatch never picked)."""
    from pipeline.report.picks import pick
    p = pick(build(_records()), "tiny_lm", "android")
    assert p.record.path == "litert_llm_dynamic_int8" and p.on_arm and p.cost == 378648.0
    assert p.cost_text() == "379k ARM64 instr/token" and not p.why
