"""The graph view (pipeline/explore/): Model Explorer node data written from a real LiteRT bench record
(per-operator profile) and a real quant-debug table of the digits model's keras_tw int8 .tflite.

The files must parse, name operators of the artifact's subgraph 0 (Model Explorer's node ids for
.tflite), carry exactly the record's numbers, and, when ai-edge-model-explorer is installed, be accepted
by its own node-data classes and adapter, and served by `python -m pipeline explore --no-open`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

import models
from pipeline.artifact import ArtifactId, resolve
from pipeline.bench import harness as bench
from pipeline.bench import profiles
from pipeline.explore import nodedata
from tests.conftest import ROOT, TEST_ARTIFACTS

AID = ArtifactId("digits_cnn", "keras_tw", "tflite_int8")
SAMPLES = 24      # held-out samples for the quant-debug table: enough for the rows, cheap on 2 cores


@pytest.fixture(scope="module")
def records(digits_exports, tmp_path_factory):
    from pipeline.quant import debug as qd
    from pipeline.quant import recover
    from pipeline.train import load_eval, load_keras
    export = digits_exports[(AID.source, AID.path)]
    (t,) = bench.targets_from_exports([export], TEST_ARTIFACTS)
    cfg = bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, timeout_s=120.0, peer=False)
    r = bench.measure_one(t, "litert", profiles.get("big-core"), cfg, tmp_path_factory.mktemp("bench"),
                          want_outputs=True).record
    assert r.status == "ok", r.error
    spec = models.get(AID.model)
    data = load_eval(spec, TEST_ARTIFACTS)
    dbg, names = qd.tflite_debugger(load_keras(spec, TEST_ARTIFACTS, AID.source), spec.to_keras(data["calib"]),
                                    spec.to_keras(data["x"][:SAMPLES]))
    table = recover._table_record(spec, AID.path, AID.source, qd.tflite_layer_errors(dbg, names),
                                  {"debugger": "tf.lite.experimental.QuantizationDebugger", "error_kind": "local"})
    return [export, r, table]


@pytest.fixture(scope="module")
def written(records, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    return results, nodedata.write(records, results)


def _ops(records):
    from ai_edge_litert.tools import flatbuffer_utils as fb
    m = fb.read_model(str(resolve(records[0].artifact)))
    return m.subgraphs[0], [fb.opcode_to_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators]


def _load(results, name):
    return json.loads(nodedata.Overlay(AID, name, "", "", {}, "", "").file(results).read_text())


def test_op_time_overlay_is_the_records_per_operator_time(records, written):
    results, built = written
    sg, names = _ops(records)
    data = _load(results, "op_ms.litert")
    (graph,) = data
    assert graph == sg.name.decode()          # Model Explorer names the graph after the subgraph
    values = {k: v["value"] for k, v in data[graph]["results"].items()}
    assert set(values) <= {str(i) for i in range(len(names))}
    prof = records[1].info["op_profile"]
    assert values == pytest.approx(prof["node_ms"])
    for o in prof["ops"]:                     # the report's top operators sit on the node they name
        assert values[str(o["node"])] == pytest.approx(o["ms"])
    # every operator has a time but a PAD the next convolution absorbs (its time is on the convolution)
    untimed = [names[i] for i in range(len(names)) if str(i) not in values]
    assert set(untimed) <= {"PAD"}, untimed
    assert data[graph]["gradient"][0]["stop"] == 0 and data[graph]["gradient"][-1]["stop"] == 1


def test_int8_error_overlay_puts_each_layer_on_its_operator(records, written):
    results, built = written
    sg, names = _ops(records)
    data = _load(results, "int8_sqnr_db")
    values = {int(k): v["value"] for k, v in data[sg.name.decode()]["results"].items()}
    rows = [row for row in records[2].info["layers"] if math.isfinite(row["sqnr_db"])]
    assert len(rows) >= 5 and len(values) >= 5
    # every row placed, each on an operator of its type whose output is the layer's (the debugger's own
    # conversion names the tensors with other Keras suffixes: re_lu_1 there, re_lu_9_1 in the artifact)
    assert len(values) == len(rows), (values, rows)
    for row in rows:
        (i,) = [i for i, op in enumerate(sg.operators)
                if nodedata.name_key(row["tensor"]) == nodedata.name_key(sg.tensors[op.outputs[0]].name.decode())]
        assert values[i] == row["sqnr_db"] and names[i] == row["op"], (names[i], row)
    (o,) = [o for o in built.overlays if o.name == "int8_sqnr_db"]
    assert "not placed" not in o.note, o.note
    # absolute bands from the int8 parity bound, not relative to this model's best operator
    from pipeline.parity import DEFAULTS
    bands = [t["value"] for t in data[sg.name.decode()]["thresholds"]]
    assert bands == sorted(bands) and bands[0] == DEFAULTS["int8"].min_sqnr_db


def test_name_key_drops_keras_suffixes_only():
    assert nodedata.name_key("m_1/re_lu_9_1/Relu;m_1/conv1_1/convolution") == "m/re_lu/Relu;m/conv1/convolution"
    assert nodedata.name_key("StatefulPartitionedCall_1:0") == "StatefulPartitionedCall:0"
    assert nodedata.name_key("m/bn1/batchnorm/sub1") == "m/bn1/batchnorm/sub1"   # digits of a name stay


def test_artifacts_without_a_reliable_node_key_are_listed_not_guessed(records, tmp_path):
    pte = dataclasses.replace(records[1], source="torch", path="et_xnnpack_int8", format="pte",
                              runtime="executorch")
    pte_export = dataclasses.replace(records[0], source="torch", path="et_xnnpack_int8", format="pte")
    changed = dataclasses.replace(records[1], source="keras", artifact_sha256="0" * 64)
    changed_export = dataclasses.replace(records[0], source="keras", artifact_sha256="0" * 64)
    built = nodedata.write([pte_export, pte, changed_export, changed], tmp_path)
    assert not built.overlays
    assert ".pte" in built.not_shown["digits_cnn/torch__et_xnnpack_int8"]
    assert "changed since it was measured" in built.not_shown["digits_cnn/keras__tflite_int8"]
    index = json.loads((tmp_path / nodedata.FOLDER / "index.json").read_text())
    assert index["not_shown"] == built.not_shown and index["overlays"] == []


def test_a_rewrite_removes_overlays_of_older_runs(records, tmp_path):
    nodedata.write(records, tmp_path)
    assert len(list((tmp_path / nodedata.FOLDER).glob("*/*.json"))) == 2
    nodedata.write(records[:2], tmp_path)      # the quant-debug table is gone
    assert [f.name for f in (tmp_path / nodedata.FOLDER).glob("*/*.json")] == [f"{AID.stem}.op_ms.litert.json"]


def test_artifact_id_parses_its_own_stem():
    for aid in (AID, ArtifactId("m", "", "user")):
        assert ArtifactId.parse(aid.model, aid.stem) == aid


def test_model_explorer_accepts_the_files(records, written):
    me = pytest.importorskip("model_explorer", reason="ai-edge-model-explorer not installed "
                             "(pip install -r requirements-explorer.txt)")
    import ai_edge_model_explorer_adapter as adapter
    from dacite import Config, from_dict
    from model_explorer import node_data_builder as ndb
    results, built = written
    graphs = json.loads(adapter.ConvertFlatbufferDirectlyToJson(adapter.VisualizeConfig(),
                                                                 str(resolve(records[0].artifact))))
    sg, names = _ops(records)
    (graph,) = graphs[0]["subgraphs"][:1]
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    for o in built.overlays:
        data = json.loads(o.file(results).read_text())
        assert list(data) == [graph["id"]]
        for node in data[graph["id"]]["results"]:
            assert labels[node].upper() == names[int(node)], (node, labels[node])   # the operator itself
        # Model Explorer's own classes take the file whole (strict: no unknown field)
        model = ndb.ModelNodeData(graphsData={
            k: from_dict(ndb.GraphNodeData, v, config=Config(strict=True)) for k, v in data.items()})
        again = json.loads(model.to_json_string())
        assert again[graph["id"]]["results"] == data[graph["id"]]["results"]
    assert me.config().add_model_from_path(str(resolve(records[0].artifact)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_explore_command_serves_the_artifact_headless(records, tmp_path):
    pytest.importorskip("model_explorer", reason="ai-edge-model-explorer not installed")
    from pipeline import stages
    stages.save_records(tmp_path, records)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "--results", str(tmp_path), "explore", AID.model,
                             AID.stem, "--no-open", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(base + "/check_health") == b"model_explorer_ok":
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "Model Explorer did not start in 90 s"
            time.sleep(0.5)
        f = nodedata.Overlay(AID, "op_ms.litert", "", "", {}, "", "").file(tmp_path)
        served = json.loads(_get(base + "/api/v1/read_text_file?path=" + urllib.parse.quote(str(f.resolve()))))
        assert json.loads(served["content"]) == json.loads(f.read_text())
        cmd = {"extensionId": "builtin_tflite_flatbuffer", "cmdId": "convert", "settings": {},
               "modelPath": str(resolve(records[0].artifact)), "deleteAfterConversion": False}
        graph = json.loads(_get(base + "/api/v1/send_command?json=" + urllib.parse.quote(json.dumps(cmd))))
        ids = {n["id"] for n in graph["graphs"][0]["nodes"]} if "graphs" in graph else \
            {n["id"] for n in graph["graphCollections"][0]["graphs"][0]["nodes"]}
        assert set(json.loads(f.read_text()).popitem()[1]["results"]) <= ids
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "[explore] digits_cnn/keras_tw__tflite_int8: op_ms.litert" in out, out
    assert f"{base}/?data=" in out, out   # the URL a browser elsewhere opens


def test_explore_without_an_overlay_is_one_line_exit_2(records, tmp_path, capsys):
    from pipeline import cli, stages
    stages.save_records(tmp_path, records)
    assert cli.main(["--results", str(tmp_path), "explore", "digits_cnn", "torch__et_xnnpack_int8",
                     "--write-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "keras_tw__tflite_int8" in err, err


def test_fp16_weights_dequantize_has_no_time_of_its_own(digits_exports):
    """fp16 weights: XNNPACK converts them at load, so their DEQUANTIZE is timed with its consumer and
    the overlay leaves it uncoloured; every other operator has a time."""
    import numpy as np
    from ai_edge_litert.tools import flatbuffer_utils as fb
    from pipeline.bench import opprofile
    f = resolve(digits_exports[("keras", "tflite_fp16")].artifact)
    prof = opprofile.profile(f, "litert", 1, [np.zeros((1, 8, 8, 1), np.float32)])
    m = fb.read_model(str(f))
    names = [fb.opcode_to_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators]
    assert "DEQUANTIZE" in names
    assert {names[int(k)] for k in prof["node_ms"]} == set(names) - {"DEQUANTIZE", "PAD"}
