"""Saving records: a run that changed nothing leaves the results file (and so the report) as it was."""
from __future__ import annotations

import dataclasses

from pipeline import stages
from pipeline.schema import Record, read_records


def _skip(model: str, created: float) -> Record:
    return Record(kind="device", model=model, status="skipped", path="tflite_fp32", runtime="executorch",
                  profile="cortex-a53", error="guest runtime executorch not installed", created=created,
                  info={"tuple_becomes_list": ("a", "b")})


def test_a_record_made_again_with_the_same_content_keeps_the_stored_one(tmp_path):
    stages.save_records(tmp_path, [_skip("m", 1.0), _skip("n", 1.0)])
    before = stages.results_file(tmp_path).read_bytes()
    stages.save_records(tmp_path, [_skip("m", 2.0), _skip("n", 2.0)])
    assert stages.results_file(tmp_path).read_bytes() == before
    changed = dataclasses.replace(_skip("m", 3.0), error="another reason")
    stages.save_records(tmp_path, [changed, _skip("n", 3.0)])
    by = {r.model: r for r in read_records(stages.results_file(tmp_path))}
    assert (by["m"].created, by["m"].error) == (3.0, "another reason") and by["n"].created == 1.0
