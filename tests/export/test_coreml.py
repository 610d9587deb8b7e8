"""Core ML paths on the digits twins: they export, the files say what an iOS engineer needs (delegate,
deployment target, inputs/outputs, int8 share, CPU kernels left), and on this Linux host the bench
records `apple_only`, never `failed`: a Core ML .pte with ExecuTorch's own error (a real worker), a
package with the reason no coremltools worker was started."""
from __future__ import annotations

import shutil
import sys

import pytest

from export import registry
from pipeline.bench import harness as bench
from pipeline.bench import profiles
from pipeline.filecheck import coreml, flatbuf
from pipeline.filecheck.validate import BadModelFile, check_model_file

ET_PATHS = {"et_coreml_fp32": "float32", "et_coreml_fp16": "float16", "et_coreml_w8": "float16"}
PACKAGES = [("torch", "coreml_fp16"), ("torch", "coreml_w8"), ("keras", "keras_coreml_fp16"),
            ("keras", "keras_coreml_w8")]
linux_only = pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML runs: nothing is apple_only")


def _file(rec):
    from conftest import ROOT
    return ROOT / rec.artifact


def test_every_coreml_path_is_registered_and_paired():
    names = set(registry.all_paths())
    assert set(ET_PATHS) | {p for _, p in PACKAGES} <= names
    assert registry.get("keras_coreml_w8").sources == ("keras",)
    assert registry.get("coreml_w8").runtimes == ("coreml",)
    assert registry.fp32_sibling("et_coreml_w8") == "et_coreml_fp32"
    assert registry.fp32_sibling("et_coreml_fp16") == "et_coreml_fp32"


@pytest.mark.parametrize("path,precision", list(ET_PATHS.items()))
def test_pte_is_delegated_to_core_ml(digits_exports, path, precision):
    rec = digits_exports[("torch", path)]
    assert rec.status == "ok", rec.error
    assert rec.metrics["size_zipped_bytes"] < rec.metrics["size_bytes"]
    (method,) = flatbuf.pte_program(_file(rec).read_bytes())
    (d,) = method["delegates"]
    assert d["id"] == "CoreMLBackend" and d["payload_bytes"] > 1000
    assert d["compile_specs"]["model_compute_precision"] == precision
    assert ("op_linear_quantizer_config" in d["compile_specs"]) == path.endswith("w8")
    info = rec.info
    # every compute op went to Core ML; the CPU part's kernels (what the app must link) are listed
    assert info["delegated_ops"] >= 10 and set(info["not_delegated"]) <= {"getitem"}, info["not_delegated"]
    assert info["cpu_operators"] == method["operators"] == []
    (inner,) = info["coreml"]
    assert inner["inputs"][0]["shape"] == [1, 1, 8, 8] and inner["outputs"][0]["shape"] == [1, 10]
    assert inner["compute_precision"] == precision
    assert inner["minimum_deployment_target"] == ("iOS 16 / macOS 13" if path.endswith("w8") else "iOS 15 / macOS 12")
    assert (inner["weights_int8_share"] > 0.5) == path.endswith("w8"), inner["weight_bytes_by_dtype"]


def test_int8_weights_shrink_the_weights(digits_exports):
    """Compared on the Core ML weights, not the .pte size: the fp16 .pte's payload also carries
    ExecuTorch's debug files (recorded per member), which the w8 one does not."""
    def weights(path):
        (inner,) = digits_exports[("torch", path)].info["coreml"]
        return sum(inner["weight_bytes_by_dtype"].values())
    assert weights("et_coreml_fp16") / weights("et_coreml_w8") > 1.6
    (files,) = digits_exports[("torch", "et_coreml_fp16")].info["coreml_payload_files"]
    assert sum(files.values()) > digits_exports[("torch", "et_coreml_fp16")].info["pte_delegates"][0]["payload_bytes"] / 2
    assert any(k.endswith("model.mlpackage/Manifest.json") for k in files), files


@pytest.mark.parametrize("source,path", PACKAGES)
def test_mlpackage_inputs_outputs_and_target(digits_exports, source, path):
    rec = digits_exports[(source, path)]
    assert rec.status == "ok", rec.error
    pkg = _file(rec)
    assert pkg.is_dir() and (pkg / "Manifest.json").is_file()
    assert check_model_file(pkg) == "mlpackage"
    facts = coreml.inspect_mlpackage(pkg)
    assert facts == rec.info["coreml"]
    assert facts["model_type"] == "mlProgram"
    shape = [1, 1, 8, 8] if source == "torch" else [1, 8, 8, 1]   # Keras twin: NHWC, as recorded
    assert [i["shape"] for i in facts["inputs"]] == [shape] and facts["inputs"][0]["dtype"] == "float32"
    assert rec.info["input_layout"] == ("torch" if source == "torch" else "nhwc")
    assert [o["shape"] for o in facts["outputs"]] == [[1, 10]]
    w8 = path.endswith("w8")
    assert facts["minimum_deployment_target"] == ("iOS 16 / macOS 13" if w8 else "iOS 15 / macOS 12")
    assert facts["compute_precision"] == "float16"
    assert ("constexpr_affine_dequantize" in facts["mil_ops"]) == w8 and facts["mil_ops"].get("conv") == 3
    assert (facts["weights_int8_share"] > 0.5) == w8, facts["weight_bytes_by_dtype"]
    assert rec.metrics["size_bytes"] == sum(f.stat().st_size for f in pkg.rglob("*") if f.is_file())


def test_bad_mlpackage_is_one_line_naming_it(digits_exports, tmp_path):
    pkg = tmp_path / "m.mlpackage"
    shutil.copytree(_file(digits_exports[("torch", "coreml_fp16")]), pkg)
    spec = next(pkg.rglob("model.mlmodel"))
    spec.write_bytes(spec.read_bytes()[:40])           # truncated protobuf
    with pytest.raises(BadModelFile, match=r"m\.mlpackage: not a valid Core ML package: .*protobuf"):
        check_model_file(pkg)
    (pkg / "Manifest.json").unlink()
    with pytest.raises(BadModelFile, match=r"m\.mlpackage: not a valid Core ML package: no readable Manifest"):
        check_model_file(pkg)


def test_only_core_ml_artifacts_need_apple(digits_exports):
    assert coreml.APPLE.needs(_file(digits_exports[("torch", "et_xnnpack_fp32")]), "pte") == ""
    assert "CoreMLBackend" in digits_exports[("torch", "et_coreml_fp16")].info["needs_apple"]
    assert "Core ML package" in digits_exports[("keras", "keras_coreml_w8")].info["needs_apple"]


@pytest.fixture(scope="module")
def apple_bench(digits_exports, tmp_path_factory):
    """The bench on a Core ML .pte (executorch) and an .mlpackage (coreml): one real worker each."""
    from conftest import TEST_ARTIFACTS
    cfg = bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, timeout_s=180.0)
    cache = tmp_path_factory.mktemp("bench-cache")
    exports = [digits_exports[("torch", "et_coreml_w8")], digits_exports[("torch", "coreml_w8")]]
    out = []
    for t in bench.targets_from_exports(exports, TEST_ARTIFACTS):
        (rt,) = t.runtimes
        out.append(bench.measure_one(t, rt, profiles.get("big-core"), cfg, cache, want_outputs=True).record)
    return exports, out


@pytest.mark.slow   # an ExecuTorch worker (~10 s); the .pte case is in make test
@linux_only
def test_bench_records_apple_only_with_the_reason_it_did_not_run(apple_bench):
    _, (pte, pkg) = apple_bench
    assert (pte.runtime, pkg.runtime) == ("executorch", "coreml")
    for r in (pte, pkg):
        assert r.status == "apple_only", (r.status, r.error)
        assert r.metrics["size_bytes"] > 1000 and r.metrics["size_zipped_bytes"] > 0
        assert "latency_p50_ms" not in r.metrics            # nothing ran: no timing is claimed
        assert r.info["coreml"] and r.info["apple_only"]
    assert "CoreMLBackend" in pte.info["apple_only"]
    assert "Backend CoreMLBackend is not registered" in pte.error, pte.error   # ExecuTorch's own words
    # no coremltools worker: it imports TensorFlow and torch only to say it cannot predict on Linux
    assert "not run" in pkg.error and "Core ML framework" in pkg.error, pkg.error


@pytest.mark.slow   # as above; test_bench_run_loads_apple_only_artifacts... checks the report on the .pte
@linux_only
def test_report_shows_apple_only(apple_bench):
    from pipeline.report import markdown, plots
    from pipeline.parity import STATUS_COLOR
    from pipeline.report.view import build
    exports, benches = apple_bench
    view = build(exports + benches)
    text = markdown.render(view)
    row = next(ln for ln in text.splitlines() if ln.startswith("| torch__et_coreml_w8 |"))
    assert "0/1 ok; Apple only [c" in row, row    # the support-per-runtime cell: status and cause id
    assert "Deployment support differs: of 2 artifacts, 2 Apple only" in text
    assert "Backend CoreMLBackend is not registered" in text
    _, _, status = plots.support_cells(view)
    assert set(status.values()) == {"apple_only"}
    assert STATUS_COLOR["apple_only"] not in {c for k, c in STATUS_COLOR.items() if k != "apple_only"}


@linux_only
def test_users_own_mlpackage_is_apple_only_with_its_facts(digits_exports, tmp_path):
    """Bring-your-own-model: no export record, so the facts come from the file itself."""
    pkg = tmp_path / "mine.mlpackage"
    shutil.copytree(_file(digits_exports[("torch", "coreml_w8")]), pkg)
    t = bench.byom_target(pkg)
    assert (t.format, t.runtimes) == ("mlpackage", ("coreml",))
    r = bench._not_run(t, dict(kind="bench", model=str(pkg), path="user", runtime="coreml"), "Exception: boom")
    assert r.status == "apple_only" and r.error == "Exception: boom"
    assert r.info["coreml"]["minimum_deployment_target"] == "iOS 16 / macOS 13"
    assert r.metrics["size_bytes"] == digits_exports[("torch", "coreml_w8")].metrics["size_bytes"]
    plain = bench.byom_target(_file(digits_exports[("torch", "et_xnnpack_fp32")]))
    assert bench._not_run(plain, dict(kind="bench", model="x", path="user"), "RuntimeError: x").status == "failed"


@linux_only
def test_bench_run_loads_apple_only_artifacts_in_one_worker_per_runtime(digits_exports, tmp_path):
    """Nothing can be timed; our artifacts of one runtime share one worker (one import), so every
    Core ML .pte is tried there and each profile recorded with its own artifact's error."""
    from conftest import TEST_ARTIFACTS
    cfg = bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, timeout_s=180.0, profiles=("big-core", "2-core"))
    exports = [digits_exports[("torch", p)] for p in ET_PATHS]
    lines = []
    recs = bench.run(bench.targets_from_exports(exports, TEST_ARTIFACTS), cfg, tmp_path, log=lines.append)
    assert len(recs) == 6 and {r.status for r in recs} == {"apple_only"}
    # one process: one record carries its start and the runtime's import
    assert sum("time_worker_start_s" in r.metrics for r in recs) == 1, [r.metrics for r in recs]
    assert {r.profile for r in recs} == {"big-core", "2-core"}
    for r in recs:
        assert _file(digits_exports[("torch", r.path)]).name in r.error and "CoreMLBackend" in r.error
    again = []
    bench.run(bench.targets_from_exports(exports, TEST_ARTIFACTS), cfg, tmp_path, log=again.append)
    assert all("(cached)" in ln for ln in again if ln.startswith("[bench ")) and len(again) == 6, again
    # the report shows them in their own status and colour, counted apart, with the runtime's words
    from pipeline.report import markdown, plots
    from pipeline.parity import STATUS_COLOR
    from pipeline.report.view import build
    view = build(exports + recs)
    text = markdown.render(view)
    row = next(ln for ln in text.splitlines() if ln.startswith("| torch__et_coreml_w8 |"))
    assert "0/1 ok; Apple only [c" in row, row    # the support-per-runtime cell: status and cause id
    assert f"Deployment support differs: of {len(exports)} artifacts, {len(exports)} Apple only" in text
    assert "Backend CoreMLBackend is not registered" in text
    assert set(plots.support_cells(view)[2].values()) == {"apple_only"}
    assert STATUS_COLOR["apple_only"] not in {c for k, c in STATUS_COLOR.items() if k != "apple_only"}
