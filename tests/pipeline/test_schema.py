from __future__ import annotations

import json

import pytest

from pipeline.schema import Record, first_line, merge, read_records


def test_roundtrip(tmp_path):
    r = Record(kind="bench", model="m", status="ok", path="tflite_fp32", metrics={"latency_p50_ms": 1.5})
    f = tmp_path / "r.jsonl"
    f.write_text(r.to_json() + "\n")
    (back,) = read_records(f)
    assert back == r


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="nope", model="m", status="ok"), "kind"),
    (dict(kind="bench", model="m", status="great"), "status"),
    (dict(kind="bench", model="m", status="failed"), "no error text"),
])
def test_invalid_records_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Record(**kwargs)


def test_unknown_field_names_the_line(tmp_path):
    f = tmp_path / "r.jsonl"
    d = json.loads(Record(kind="bench", model="m", status="ok").to_json())
    d["surprise"] = 1
    f.write_text(json.dumps(d) + "\n")
    with pytest.raises(ValueError, match=r"r.jsonl:1: .*surprise"):
        read_records(f)


def test_merge_replaces_same_key():
    a = Record(kind="bench", model="m", status="ok", path="p", metrics={"x": 1.0})
    b = Record(kind="bench", model="m", status="ok", path="p", metrics={"x": 2.0})
    c = Record(kind="bench", model="m", status="ok", path="q")
    merged = merge([a, c], [b])
    assert len(merged) == 2 and merged[0].metrics["x"] == 2.0


def test_first_line():
    assert first_line(ValueError("bad\nmore")) == "ValueError: bad"
    assert first_line("\n\n  x  \ny") == "x"
