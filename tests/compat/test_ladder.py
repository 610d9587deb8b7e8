"""The ladder table, the reading of a runtime's error, and the measured-minimum rule (no runtime runs here:
the records are what the worker and `records.py` write)."""
from __future__ import annotations

import importlib

import pytest

from pipeline.compat import lacks, ladder, minimum
from pipeline.schema import Record


def _v(r: ladder.Rung) -> tuple[int, ...]:
    return tuple(int(p) for p in r.version.split("."))


@pytest.mark.parametrize("fmt", ladder.formats())
def test_each_ladder_is_in_release_order_and_its_adapters_read_the_format(fmt):
    rungs = ladder.select(fmt, "full")
    assert len({r.id for r in rungs}) == len(rungs)
    for dist in {r.dist for r in rungs}:
        versions = [_v(r) for r in rungs if r.dist == dist]
        assert versions == sorted(versions), dist
    default = ladder.select(fmt, "default")
    assert len(default) >= 2 and set(default) <= set(rungs)
    for r in rungs:
        adapter = importlib.import_module(r.adapter).ADAPTER
        assert fmt in adapter.FORMATS and r.requirements()[0] == r.id
        assert ladder.by_id(r.id) is r and ladder.position(r) == rungs.index(r)


def test_ladder_selection_by_name_and_by_rung_ids():
    assert ladder.select("tflite", "none") == []
    two = ladder.select("tflite", "ai-edge-litert==2.3.0,tflite-runtime==2.14.0,onnxruntime==1.31.1")
    assert [r.id for r in two] == ["tflite-runtime==2.14.0", "ai-edge-litert==2.3.0"]    # ladder order
    with pytest.raises(KeyError, match="unknown runtime release 'ai-edge-litert==9.9.9'.*known: "):
        ladder.select("tflite", "ai-edge-litert==9.9.9")
    with pytest.raises(ValueError, match="expected default, full, none or rung ids"):
        ladder.select("tflite", ",")


# the runtimes' own words (first lines as the releases print them)
TFLITE_214 = ("ValueError: Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of "
              "this builtin might be supported. Are you using an old TFLite binary with a newer model?\n"
              "Registration failed.")
ORT_115 = ("Fail: [ONNXRuntimeError] : 1 : FAIL : Load model from /x/m.onnx failed:/onnxruntime_src/onnxruntime/"
           "core/graph/model.cc:149 onnxruntime::Model::Model(onnx::ModelProto&&, const PathString&, const "
           "IOnnxRuntimeOpSchemaRegistryList*, const onnxruntime::logging::Logger&, const "
           "onnxruntime::ModelOptions&) Unsupported model IR version: 10, max supported IR version: 9")


def test_what_a_release_lacks_is_read_into_fields():
    assert lacks.parse(TFLITE_214) == {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}
    assert lacks.describe(lacks.parse(TFLITE_214)) == "FULLY_CONNECTED v12"
    assert lacks.parse(ORT_115) == {"kind": "ir_version", "version": 10, "supported": 9}
    assert lacks.describe(lacks.parse(ORT_115)) == "IR version 10 (reads up to 9)"
    assert lacks.parse("RuntimeError: something else broke") == {} and lacks.describe({}) == ""


def _rec(rung_id: str, status: str, lack: dict | None = None, declared: str = "2.0.0") -> Record:
    r = ladder.by_id(rung_id)
    return Record(kind="compat", model="m", source="keras", path="tflite_dynamic_int8", format="tflite",
                  quantization="dynamic_int8", runtime=r.id, status=status,
                  error="" if status == "ok" else ("no environment" if status == "skipped" else TFLITE_214),
                  info={"release": {"label": r.label, "product": r.product, "dist": r.dist, "version": r.version,
                                    "position": ladder.position(r)},
                        "lacks": lack or {}, "declared": {"min_runtime_version": declared}})


FC12 = {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}


def test_measured_minimum_gap_and_a_false_declared_claim():
    recs = [_rec("tflite-runtime==2.14.0", "failed", FC12), _rec("ai-edge-litert==1.0.1", "ok"),
            _rec("ai-edge-litert==1.1.2", "failed", FC12), _rec("ai-edge-litert==1.2.0", "ok"),
            _rec("ai-edge-litert==2.3.0", "ok"), _rec("ai-edge-litert==2.2.0", "skipped")]
    m = minimum.of(recs)
    assert [r.runtime for r in m.measured] == ["tflite-runtime==2.14.0", "ai-edge-litert==1.0.1",
                                               "ai-edge-litert==1.1.2", "ai-edge-litert==1.2.0",
                                               "ai-edge-litert==2.3.0"]
    assert m.lowest.runtime == "ai-edge-litert==1.0.1" and m.matches_from.runtime == "ai-edge-litert==1.2.0"
    assert [r.runtime for r in m.gaps] == ["ai-edge-litert==1.1.2"] and m.blocker.runtime == "ai-edge-litert==1.1.2"
    assert minimum.needs(m) == "LiteRT >= 1.2.0" and m.unmeasured_below == []
    assert minimum.sentence(m) == ("loads and matches on LiteRT >= 1.2.0 (measured on 5 releases; not on LiteRT "
                                   "1.1.2: FULLY_CONNECTED v12; also on LiteRT 1.0.1, below that gap)")
    # declared 2.0.0 covers TFLite 2.14 and every LiteRT release: both failures contradict it
    assert [r.runtime for r in m.false_claim] == ["tflite-runtime==2.14.0", "ai-edge-litert==1.1.2"]
    # a declaration newer than TFLite 2.14 does not cover it; one past TF 2.16 says nothing of LiteRT
    assert minimum.of([_rec("tflite-runtime==2.14.0", "failed", FC12, "2.17.0"),
                       _rec("ai-edge-litert==1.1.2", "failed", FC12, "2.17.0"),
                       _rec("ai-edge-litert==2.3.0", "ok", None, "2.17.0")]).false_claim == ()


def test_a_file_that_matches_nowhere_and_one_that_matches_everywhere():
    m = minimum.of([_rec("tflite-runtime==2.14.0", "ok"), _rec("ai-edge-litert==2.3.0", "mismatch")])
    assert m.matches_from is None and minimum.needs(m) == "none"
    assert minimum.sentence(m).startswith("matches on no release from the newest down (LiteRT 2.3.0: mismatch; "
                                          "loads on TFLite >= 2.14.0")
    m = minimum.of([_rec("tflite-runtime==2.14.0", "failed", FC12), _rec("ai-edge-litert==2.3.0", "ok")])
    assert "2.3.0" not in m.unmeasured_below and len(m.unmeasured_below) == len(ladder.LADDERS["tflite"]) - 4
    assert minimum.sentence(m).startswith("loads and matches on LiteRT >= 2.3.0 (measured on 2 releases; not on "
                                          "TFLite 2.14.0: FULLY_CONNECTED v12; 20 releases between not measured")
    m = minimum.of([_rec("tflite-runtime==2.14.0", "ok"), _rec("ai-edge-litert==2.3.0", "ok")])
    assert minimum.needs(m) == "TFLite >= 2.14.0 (the oldest measured)"
    assert minimum.sentence(m) == ("loads and matches on TFLite >= 2.14.0, the oldest release measured "
                                   "(measured on 2 releases)")


def test_the_command_line_refuses_an_unknown_release_in_one_line(capsys):
    from pipeline import cli
    for argv in (["compat", "--ladder", "ai-edge-litert==9.9"], ["package", "m.pt2", "--ladder", "onnxruntime==0.1"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2 and "unknown runtime release" in capsys.readouterr().err
