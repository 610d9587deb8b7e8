"""`python -m pipeline package` end to end on small real models of each source kind: a bundle per
platform whose manifest matches the shipped file as its runtime loads it, parity `ok`, a planted
int8 mismatch, and a re-run that reuses the finished work."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import fsutil
from tests.package.usermodels import TWO_RELEASES, manifest, package, user_models  # noqa: F401 - a fixture


def check_manifest(bundle, platform: str, sample_shape: tuple) -> dict:
    """The manifest against the artifact: bytes, I/O as the runtime loads it, operators in the file."""
    man = manifest(bundle, platform)
    assert man["manifest_version"] == 1
    art = bundle / platform / man["artifact"]["file"]
    assert fsutil.sha256_file(art) == man["artifact"]["sha256"]
    assert fsutil.size_bytes(art) == man["artifact"]["bytes"]
    assert man["parity"]["status"] == "ok", man["parity"]
    assert man["runtime"]["loads_here"][man["runtime"]["verified_with"]["name"]]["loads"]
    assert man["measured"]["profiles"]["big-core"]["p50"] > 0
    assert (bundle / platform / "README.md").read_text().count(man["artifact"]["file"]) >= 1
    if man["artifact"]["format"] == "tflite":
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=str(art))
        for got, want in ((it.get_input_details(), man["inputs"]), (it.get_output_details(), man["outputs"])):
            assert [d["name"] for d in got] == [t["name"] for t in want]
            assert [[int(s) for s in d["shape"]] for d in got] == [t["shape"] for t in want]
            assert [np.dtype(d["dtype"]).name for d in got] == [t["dtype"] for t in want]
        assert man["inputs"][0]["shape"] == [1, *sample_shape]
        in_file = {o["op_name"] for o in it._get_ops_details() if o["op_name"] != "DELEGATE"}
        assert {o["op"] for o in man["runtime"]["minimum"]["operators"]} == in_file
        assert all(o["version"] >= 1 for o in man["runtime"]["minimum"]["operators"])
        assert man["runtime"]["minimum"]["min_runtime_version"]
        mm = man["runtime"]["measured_minimum"]
        if mm["measured"]:      # the two-release ladder of test_pt2
            assert mm["releases_measured"] == 2 and [r["label"] for r in mm["releases"]] == ["TFLite 2.14.0",
                                                                                              "LiteRT 2.3.0"]
            assert mm["sentence"].startswith("loads and matches on ") and "(measured on 2 releases" in mm["sentence"]
            assert mm["declared_min_runtime_version"] == man["runtime"]["minimum"]["min_runtime_version"]
            assert f"On released runtimes it {mm['sentence']}" in (bundle / platform / "README.md").read_text()
        else:
            assert mm["reason"] == "the version ladder was not run (--ladder none)"
    elif man["artifact"]["format"] == "aimodel":
        from pipeline.filecheck import coreai
        fn = coreai.inspect(art)["functions"]["main"]
        for got, want in ((fn["inputs"], man["inputs"]), (fn["outputs"], man["outputs"])):
            assert [(t["name"], t["shape"], t["dtype"]) for t in got] == [(t["name"], t["shape"], t["dtype"])
                                                                         for t in want]
        assert man["inputs"][0]["shape"] == [1, *sample_shape]
        assert man["runtime"]["minimum"]["minimum_os"].endswith("27.0")
        assert "AIModel(contentsOf:" in (bundle / platform / "README.md").read_text()
    else:
        from executorch.exir._serialize._program import deserialize_pte_binary
        from executorch.runtime import Runtime
        method = Runtime.get().load_program(str(art)).load_method("forward")
        meta = method.metadata
        assert meta.num_inputs() == len(man["inputs"]) and meta.num_outputs() == len(man["outputs"])
        assert [list(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())] == \
            [t["shape"] for t in man["inputs"]] == [[1, *sample_shape]]
        assert [t["dtype"] for t in man["inputs"]] == ["float32"]
        prog = deserialize_pte_binary(art.read_bytes())
        prog = getattr(prog, "program", prog)
        plan = prog.execution_plan[0]
        assert sorted(f"{o.name}.{o.overload}" for o in plan.operators) == man["runtime"]["minimum"]["operators"]
        assert sorted({d.id for d in plan.delegates}) == man["runtime"]["minimum"]["delegates"]
        assert (bundle / platform / "selected_operators.yaml").exists()
        assert not man["runtime"]["measured_minimum"]["measured"]
        assert "ExecuTorch runtime wheel" in man["runtime"]["measured_minimum"]["reason"]
    return man


# every torch path is `make test-slow`; `make test` takes one path per format and stack (the same
# checks: both platforms' manifests, records, the Core ML offer, an int8 file calibrated on the user's
# samples), to keep the suite within its budget: litert_torch_int8 and et_xnnpack_fp32 went to the slow
# variant (this test was 320 s of the suite's 2607 s under load ~11, the largest; the exports are the
# registry's, each checked on the zoo by tests/export/test_paths.py)
PT2_PATHS = "litert_torch_fp32,et_xnnpack_int8,coreml_fp16,et_coreml_fp16"


def test_pt2(user_models, tmp_path):
    _pt2(user_models, tmp_path, ["--paths", PT2_PATHS])


@pytest.mark.slow
def test_pt2_all_torch_paths(user_models, tmp_path):
    _pt2(user_models, tmp_path, [])


def _pt2(user_models, tmp_path, extra: list):
    assert package(tmp_path, str(user_models["pt2"]), "--samples", str(user_models["samples"]), *extra,
                   ladder=TWO_RELEASES) == 0
    bundle = tmp_path / "dist" / "cnn"
    for plat in ("android", "ios"):
        man = check_manifest(bundle, plat, (3, 16, 16))
        assert man["source"] == {"kind": "pt2", "path": str(user_models["pt2"]), "framework": "torch",
                                 "sha256": fsutil.sha256_file(user_models["pt2"])}
        assert man["calibration"] == "user"
        assert man["inputs"][0]["layout"] == "NCHW"
        assert man["command"].startswith("python -m pipeline ") and "package" in man["command"]
    records = [json.loads(line) for line in (bundle / "records.jsonl").read_text().splitlines()]
    exported = {r["path"] for r in records if r["kind"] == "export"}
    from export import registry
    assert exported == ({p.name for p in registry.paths_for("classification").values() if p.input_kind == "torch"} if not extra
                        else set(PT2_PATHS.split(",")))
    assert (bundle / "report.html").read_text().count("<tr>") > len(exported)
    assert not list((tmp_path / "dist").glob(".tmp-*"))
    # the version ladder ran every .tflite candidate on both releases, its records beside the others
    ladder = {(r["path"], r["runtime"]) for r in records if r["kind"] == "compat"}
    tflite = {r["path"] for r in records if r["kind"] == "export" and r["format"] == "tflite"}
    assert tflite and ladder == {(p, rt) for p in tflite for rt in ("tflite-runtime==2.14.0", "ai-edge-litert==2.3.0")}
    # iOS also offers the Core ML candidates, exported and checked as files, never verified here
    ios = json.loads((bundle / "ios" / "manifest.json").read_text())
    offered = {c["format"]: c for c in ios["unverified_candidates"]}
    assert set(offered) == {"mlpackage", "pte"}, offered
    for c in offered.values():
        assert c["verified"] is False and c["status"] == "apple_only" and c["reason"]
        assert (bundle / "ios" / c["file"]).exists()
        assert c["minimum_deployment_target"].startswith("iOS")
    assert (bundle / "ios" / offered["mlpackage"]["file"] / "Manifest.json").is_file()
    assert offered["pte"]["delegates"] == ["CoreMLBackend"]
    assert "not verified on this host" in (bundle / "ios" / "README.md").read_text()
    assert not (bundle / "android" / "coreml").exists()
    apple = [r for r in records if r["path"].startswith(("coreml_", "et_coreml_")) and r["kind"] == "bench"]
    assert apple and {r["status"] for r in apple} == {"apple_only"}


def test_keras_file_with_eval_labels_and_rerun(user_models, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\ne\n")
    # the TFLite paths (the Keras Core ML paths are covered by tests/export/test_coreml.py)
    # two paths: the re-run's reuse and the choice need a choice; every TFLite path of a Keras model is in
    # test_savedmodel_source_with_a_planted_int8_mismatch (int8) here and tests/export/test_paths.py (fp16, dynamic)
    args = [str(user_models["keras"]), "--samples", str(user_models["ksamples"]), "--eval", str(user_models["keval"]),
            "--labels", str(labels), "--name", "kws", "--paths", "tflite_fp32,tflite_fp16"]
    assert package(tmp_path, *args) == 0
    bundle = tmp_path / "dist" / "kws"
    for plat in ("android", "ios"):
        man = check_manifest(bundle, plat, (16, 16, 3))
        assert man["inputs"][0]["layout"] == "NHWC"
        assert man["measured"]["accuracy"] >= 0.95     # labels are the Keras model's own predictions
        assert (bundle / plat / "labels.txt").read_text() == labels.read_text()
    first = (bundle / "android" / "manifest.json").read_text()
    assert package(tmp_path, *args) == 0
    again = json.loads((bundle / "android" / "manifest.json").read_text())
    # same exports (cached: same bytes) and the same choice
    assert again["artifact"]["sha256"] == json.loads(first)["artifact"]["sha256"]


@pytest.mark.slow   # ~31 s; .pt2 and .keras sources stay in make test
def test_factory_source_pte_manifest_and_random_samples(user_models, tmp_path, capsys):
    src = f"{user_models['factory']}:build"
    assert package(tmp_path, src, "--paths", "et_portable_fp32", "--name", "fac") == 0
    assert "warning: no --samples" in capsys.readouterr().out
    man = check_manifest(tmp_path / "dist" / "fac", "ios", (3, 16, 16))
    assert man["calibration"] == "random"
    assert man["runtime"]["minimum"]["operators"]          # portable kernels: the program's own operators
    assert man["runtime"]["minimum"]["executorch_version"]


def test_savedmodel_source_with_a_planted_int8_mismatch(user_models, tmp_path):
    """A SavedModel source (the .keras source is test_keras_file_with_eval_labels_and_rerun's), calibrated at
    1/100 of the parity samples' range: the int8 file clips every real input. One package run for both
    claims (the suite's budget)."""
    with np.load(user_models["ksamples"]) as z:
        np.savez(tmp_path / "calib.npz", image=z["image"] / 100)
    assert package(tmp_path, str(user_models["savedmodel"]), "--samples", str(user_models["ksamples"]),
                   "--calib", str(tmp_path / "calib.npz"), "--paths", "tflite_fp32,tflite_int8") == 0
    bundle = tmp_path / "dist" / "small_sm"
    assert check_manifest(bundle, "android", (16, 16, 3))["source"]["kind"] == "savedmodel"
    records = [json.loads(line) for line in (bundle / "records.jsonl").read_text().splitlines()]
    int8 = [r for r in records if r["kind"] == "bench" and r["path"] == "tflite_int8" and r["runtime"] == "litert"]
    assert int8 and all(r["status"] == "mismatch" for r in int8), int8
    assert "SQNR" in int8[0]["error"]
    assert int8[0]["metrics"]["sqnr_db"] < 15
    # the explanation names the planted cause from the evidence and the file: inputs beyond the int8 range
    from pipeline.explain import rules
    e = rules.explain(int8[0]["info"]["evidence"], int8[0]["info"]["file"], "int8")
    assert e.rule == "input_range", e
    assert "the inputs overflow the file's quantized input range" in e.cause, e.cause
    assert manifest(bundle, "android")["artifact"]["export_path"] == "tflite_fp32"


@pytest.mark.slow   # ~10 s; choose.py's unit tests cover the rule
def test_prefer_rule_is_recorded_with_its_reason(user_models, tmp_path):
    prefer = "size"
    assert package(tmp_path, str(user_models["keras"]), "--samples", str(user_models["ksamples"]),
                   "--paths", "tflite_fp32,tflite_int8", "--prefer", prefer) == 0
    man = manifest(tmp_path / "dist" / "small", "android")
    assert man["choice"]["prefer"] == prefer and f"--prefer {prefer}" in man["choice"]["reason"]


@pytest.mark.slow   # ~24 s; tests/faults/test_interrupt.py covers Ctrl-C in make test
def test_ctrl_c_leaves_no_bundle_and_rerun_reuses_exports(user_models, tmp_path):
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.package.usermodels import BENCH
    cmd = [sys.executable, "-m", "pipeline", "--artifacts", str(tmp_path / "art"), "--results", str(tmp_path / "results"),
           "package", str(user_models["keras"]),
           "--samples", str(user_models["ksamples"]), "--paths", "tflite_fp32,tflite_int8", "--out", str(tmp_path / "dist"),
           *BENCH, "--ladder", "none"]
    # SIGINT as a terminal delivers it (whatever disposition the test process holds)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("[package parity]"):     # every export finished; interrupt the checks
            proc.send_signal(signal.SIGINT)
            break
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "interrupted: package stopped" in out
    assert not (tmp_path / "dist" / "small").exists()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:]
    assert again.stdout.count(": up to date") == 2, again.stdout
    assert (tmp_path / "dist" / "small" / "android" / "manifest.json").exists()


@pytest.mark.slow
def test_pt2_ios_ships_a_verified_aimodel(user_models, tmp_path):
    """Core AI next to LiteRT: the iOS bundle ships the .aimodel Core AI's runtime verified, says why
    (host timings of different runtimes are not compared), and the compressed path that cannot compress a
    .pt2's unlifted graph is `unsupported`, not an fp32 file under a w8 name."""
    paths = "litert_torch_fp32,coreai_fp32,coreai_fp16,coreai_w8"
    assert package(tmp_path, str(user_models["pt2"]), "--samples", str(user_models["samples"]), "--paths", paths) == 0
    bundle = tmp_path / "dist" / "cnn"
    ios = check_manifest(bundle, "ios", (3, 16, 16))
    assert ios["artifact"]["format"] == "aimodel" and ios["artifact"]["export_path"] in ("coreai_fp32", "coreai_fp16")
    assert ".aimodel first" in ios["choice"]["reason"]
    assert check_manifest(bundle, "android", (3, 16, 16))["artifact"]["format"] == "tflite"
    records = [json.loads(line) for line in (bundle / "records.jsonl").read_text().splitlines()]
    w8 = next(r for r in records if r["kind"] == "export" and r["path"] == "coreai_w8")
    assert w8["status"] == "unsupported" and "compressed no weight" in w8["error"]
    assert not list((tmp_path / "art").rglob("*.aimodelx"))


@pytest.mark.slow   # ExecuTorch and ONNX exports of a .pt2 (7 min 42 s under load ~14)
def test_planted_int8_mismatch_is_explained_for_pte_and_onnx(user_models, tmp_path):
    """The same planted calibration (1/100 of the samples' range) on the PyTorch int8 paths: the ranges
    come from the XNNPACK payload's quantized values and from ONNX's QuantizeLinear."""
    from pipeline.explain import rules
    with np.load(user_models["samples"]) as z:
        np.savez(tmp_path / "calib.npz", z["arr_0"] / 100)
    assert package(tmp_path, str(user_models["pt2"]), "--samples", str(user_models["samples"]),
                   "--calib", str(tmp_path / "calib.npz"), "--paths", "et_portable_fp32,et_xnnpack_int8,onnx_int8") == 0
    records = [json.loads(line) for line in (tmp_path / "dist" / "cnn" / "records.jsonl").read_text().splitlines()]
    for path in ("et_xnnpack_int8", "onnx_int8"):
        rs = [r for r in records if r["kind"] == "bench" and r["path"] == path and r["status"] == "mismatch"]
        assert rs, (path, [(r["path"], r["status"]) for r in records])
        e = rules.explain(rs[0]["info"]["evidence"], rs[0]["info"]["file"], "int8")
        assert e.rule == "input_range", (path, e)
