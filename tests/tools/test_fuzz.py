"""Fuzzing the loaders with mutants of the real digits artifacts (pipeline/tools/fuzz.py), and the package
sources (.pt2, SavedModel) with mutants of the digits twins (pipeline/tools/fuzz_sources.py).

    .venv/bin/python -m pytest -q tests/faults/test_fuzz.py            # 50 mutants per format
    make fuzz                                                           # 1000 per format (marker fuzz)

Every mutant goes through `check_model_file` in this (the harness) process, then through the real
measurement in a batch worker with every runtime of its format. Must hold: 0 harness crashes, 0
unclear errors; worker crashes/hangs are allowed (caught and counted) and printed.
"""
from __future__ import annotations

import json
import os

import pytest

from pipeline.tools import fuzz

FORMATS = ("tflite", "pte", "ptl")


def _seeds(digits_exports):
    from conftest import TEST_ARTIFACTS
    seeds = fuzz.seed_files(TEST_ARTIFACTS)
    assert set(FORMATS) <= set(seeds), f"missing seed artifacts: {set(FORMATS) - set(seeds)}"
    return seeds


def _check(t: fuzz.Tally, n: int) -> None:
    s = t.summary()
    print(json.dumps({k: v for k, v in s.items() if k != "examples"}))
    assert s["tried"] == n
    assert sum(s[k] for k in fuzz.OUTCOMES) == n, s
    assert s["harness_crashed"] == 0, s["examples"].get("harness_crashed")
    assert s["unclear_error"] == 0, s["examples"].get("unclear_error")
    # the mutants must exercise both sides: some rejected up front, some reaching the runtime
    assert s["rejected_by_validator"] > 0 and s["rejected_by_validator"] < n, s


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_short(digits_exports, tmp_path, fmt):
    n = 50
    shapes = [[1, 1, 8, 8]] if fmt == "ptl" else None
    _check(fuzz.fuzz_format(fmt, _seeds(digits_exports)[fmt], n, tmp_path, seed=1, shapes=shapes), n)


@pytest.mark.fuzz
@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_long(digits_exports, tmp_path, fmt):
    n = int(os.environ.get("FUZZ_PER_FORMAT", "1000"))
    shapes = [[1, 1, 8, 8]] if fmt == "ptl" else None
    t = fuzz.fuzz_format(fmt, _seeds(digits_exports)[fmt], n, tmp_path, seed=2, shapes=shapes)
    _check(t, n)
    # the harness pre-check is bounded by the file's size (a benchmark figure: run on an idle machine)
    assert t.summary()["precheck_s_per_mb_max"] <= 1.0, t.summary()
    out = os.environ.get("FUZZ_SUMMARY_DIR")
    if out:
        from pathlib import Path
        from pipeline.fsutil import write_json_atomic
        write_json_atomic(Path(out) / f"fuzz-{fmt}.json", t.summary())


def _check_sources(t, n: int) -> None:
    s = t.summary()
    print(json.dumps({k: v for k, v in s.items() if k != "examples"}))
    assert s["tried"] == n and sum(s[k] for k in fuzz.OUTCOMES) == n, s
    # harness_crashed includes any mutant whose payload ran (its marker file written): must be 0
    assert s["harness_crashed"] == 0, s["examples"].get("harness_crashed")
    assert s["unclear_error"] == 0, s["examples"].get("unclear_error")
    assert 0 < s["rejected_by_validator"] < n, s


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pt2", "savedmodel"])
def test_fuzz_sources_short(tmp_path, kind):
    from pipeline.tools import fuzz_sources
    _check_sources(fuzz_sources.fuzz_kind(kind, fuzz_sources.seeds(tmp_path)[kind], 30, tmp_path, 1), 30)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", ["pt2", "savedmodel"])
def test_fuzz_sources_long(tmp_path, kind):
    """`make fuzz`: .pt2 and SavedModel mutants through the pre-checks and a sandboxed sources.load."""
    from pipeline.tools import fuzz_sources
    n = int(os.environ.get("FUZZ_PER_KIND", "300"))
    _check_sources(fuzz_sources.fuzz_kind(kind, fuzz_sources.seeds(tmp_path)[kind], n, tmp_path, 2), n)
