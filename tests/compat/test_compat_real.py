"""The version ladder with real runtimes: a ladder of two releases per format in `make test` (both in the
project's own venvs, nothing to download); every default release behind `make test-slow`."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline import fsutil
from pipeline.compat import envs, ladder, measure, minimum, zoo
from tests.conftest import ROOT, TEST_ARTIFACTS

TWO = "tflite-runtime==2.14.0,ai-edge-litert==2.3.0,onnxruntime==1.31.1"


@pytest.fixture(scope="session")
def fc_v12(tmp_path_factory) -> Path:
    """A dynamic-range Dense by TensorFlow's converter: FULLY_CONNECTED version 12 (per-channel hybrid),
    which TFLite 2.14 has no kernel for (the skew of issue 27). Made once per converter script version."""
    script = ("import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport sys, keras, tensorflow as tf\n"
              "keras.utils.set_random_seed(0)\ni = keras.Input((64,))\nm = keras.Model(i, keras.layers.Dense(64)(i))\n"
              "c = tf.lite.TFLiteConverter.from_keras_model(m)\nc.optimizations = [tf.lite.Optimize.DEFAULT]\n"
              "open(sys.argv[1], 'wb').write(c.convert())\n")
    out = ROOT / ".cache" / "test-compat" / hashlib.sha256(script.encode()).hexdigest()[:12] / "dense_dynamic.tflite"
    if not out.exists():
        import subprocess
        import sys
        out.parent.mkdir(parents=True, exist_ok=True)
        with fsutil.atomic_path(out) as tmp:
            subprocess.run([sys.executable, "-c", script, str(tmp)], check=True, capture_output=True, timeout=600)
    return out


def test_a_release_that_lacks_an_operator_is_a_structured_finding(fc_v12, tmp_path):
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(200))     # right identifier, nothing behind it
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", in_0=x)
    items = [measure.Item(p.name, p, "tflite", fsutil.sha256_file(p), tmp_path / "in.npz", "k") for p in (fc_v12, bad)]
    # as `package` runs it: each release's worker in the OS sandbox, reading only its venv, files and samples
    got = {(r.item_id, r.rung): r for r in measure.run(items, TWO, lambda it, outs: {"rows": float(len(outs[0]))},
                                                       tmp_path / "cache", sandboxed=True)}
    old, new = got[("dense_dynamic.tflite", "tflite-runtime==2.14.0")], got[("dense_dynamic.tflite", "ai-edge-litert==2.3.0")]
    assert old.status == "failed" and old.stage == "load"
    assert old.lacks == {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}, old.error
    assert new.status == "ok" and new.version == "2.3.0" and new.metrics == {"rows": 4.0}
    # the corrupt file costs its own two measurements only
    assert {got[("corrupt.tflite", r)].status for r in ("tflite-runtime==2.14.0", "ai-edge-litert==2.3.0")} == {"failed"}
    # a second run reads every result from the cache, the failures with their fields
    again = {(r.item_id, r.rung): r for r in measure.run(items, TWO, lambda it, outs: {}, tmp_path / "cache")}
    assert all(r.cached for r in again.values()) and again[("dense_dynamic.tflite", "tflite-runtime==2.14.0")].lacks == old.lacks


def test_two_release_ladder_over_the_digits_artifacts(digits_exports, tmp_path):
    exports = list(digits_exports.values())
    recs = zoo.run(exports, TEST_ARTIFACTS, TWO, tmp_path / "cache", log=lambda m: None)
    laddered = [e for e in exports if e.kind == "export" and e.status == "ok" and e.format in ("tflite", "onnx")]
    assert len(recs) == sum(2 if e.format == "tflite" else 1 for e in laddered)
    assert {r.runtime for r in recs} == set(TWO.split(","))
    for r in recs:
        assert r.kind == "compat" and r.status == "ok", (r.runtime, r.path, r.error)
        assert r.info["release"]["version"] == r.runtime.split("==")[1] == r.info["runtime_version"]
        assert "max_abs_diff" in r.metrics and "sqnr_db" in r.metrics
        if r.format == "tflite":
            assert r.info["declared"]["min_runtime_version"]
        else:
            assert r.info["declared"]["ir_version"] >= 7 and r.info["declared"]["opsets"]["ai.onnx"] >= 11
    # the newest release reproduces the bench's parity figures for the same file (same samples, same rule)
    fp32 = next(r for r in recs if r.path == "tflite_fp32" and r.source == "keras" and r.runtime == "ai-edge-litert==2.3.0")
    assert fp32.metrics["max_abs_diff"] < 1e-4 and fp32.metrics["top1_agreement"] == 1.0
    m = minimum.by_artifact(recs)[("digits_cnn", "keras", "tflite_int8")]
    assert minimum.needs(m) == "TFLite >= 2.14.0 (the oldest measured)" and not m.false_claim


def test_an_environment_that_cannot_be_built_is_a_kept_finding(tmp_path, monkeypatch):
    """A release pip cannot install (offline here: no index) leaves no environment, only its error, kept
    for a day so a rerun does not pay for it; `rebuild` tries again."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    rung = ladder.Rung("tflite", "ai-edge-litert", "0.0.1", "pipeline.runtimes.litert", "LiteRT")
    env = envs.ensure(rung, tmp_path / "envs", log=lambda m: None)
    assert not env.python and "ai-edge-litert==0.0.1: pip failed: ERROR:" in env.error
    assert sorted(p.name for p in (tmp_path / "envs").iterdir()) == [".lock-ai-edge-litert-0.0.1",
                                                                     "ai-edge-litert-0.0.1.failed.json"]
    calls = []
    monkeypatch.setattr(envs, "_make", lambda *a: calls.append(a) or "retried")
    assert envs.ensure(rung, tmp_path / "envs").error == env.error and not calls     # kept: pip not run again
    assert "retried" in envs.ensure(rung, tmp_path / "envs", rebuild=True, log=lambda m: None).error and calls


def test_an_interrupted_build_leaves_no_environment_and_the_next_builder_clears_it(tmp_path, monkeypatch):
    """SIGKILL a builder in the middle (its installer stands in as a step that never ends): nothing at the
    environment's path; the next build of that release removes the dead one's temp folder."""
    import signal
    import subprocess
    import sys
    driver = (f"import sys, time\nsys.path.insert(0, {str(ROOT)!r})\nfrom pipeline.compat import envs, ladder\n"
              "def hang(rung, venv, *rest):\n    venv.mkdir(parents=True); (venv / 'half').write_text('x')\n"
              "    print('started', flush=True); time.sleep(120)\n"
              "envs._make = hang\n"
              f"envs.ensure(ladder.by_id('ai-edge-litert==1.2.0'), __import__('pathlib').Path({str(tmp_path)!r}), "
              "log=lambda m: None)\n")
    p = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "ai-edge-litert-1.2.0").exists()
    assert len(list(tmp_path.glob(".tmp-ai-edge-litert-1.2.0.*"))) == 1
    monkeypatch.setattr(envs, "_make", lambda *a: "stopped here")
    env = envs.ensure(ladder.by_id("ai-edge-litert==1.2.0"), tmp_path, log=lambda m: None)
    assert env.error.endswith("stopped here") and not env.python
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "ai-edge-litert-1.2.0").exists()


@pytest.mark.slow
def test_default_ladder_on_the_digits_artifacts_and_the_v12_file(digits_exports, fc_v12, tmp_path):
    """Every release of the default ladder (environments built on first use into .cache/compat)."""
    recs = zoo.run(list(digits_exports.values()), TEST_ARTIFACTS, "default", tmp_path / "cache", log=print)
    got = {(r.path, r.source, r.runtime): r for r in recs}
    n = {f: len(ladder.select(f, "default")) for f in ladder.formats()}
    assert {r.runtime for r in recs} == {g.id for f in n for g in ladder.select(f, "default")}
    assert all(r.status != "skipped" for r in recs), [r.error for r in recs if r.status == "skipped"]
    onnx = minimum.of([r for k, r in got.items() if k[:2] == ("onnx_fp32", "torch")])
    # torch 2.13's exporter writes IR version 10: the releases before it say so
    first = onnx.measured[0]
    assert first.status == "failed" and first.info["lacks"]["kind"] == "ir_version", first.error
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", in_0=x)
    item = measure.Item("fc", fc_v12, "tflite", fsutil.sha256_file(fc_v12), tmp_path / "in.npz", "k")
    res = measure.run([item], "default", lambda it, outs: {}, tmp_path / "cache")
    assert len(res) == n["tflite"] and res[0].lacks == {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}


def test_stopped_builds_kill_their_processes_and_record_no_failure(tmp_path, monkeypatch):
    """Ctrl-C during `compat`: the running build steps are killed at once and the release is not recorded
    as one that cannot be built."""
    import threading
    import time
    builds = envs.Builds()
    monkeypatch.setattr(envs, "_make", lambda rung, venv, check, b: b.run(["sleep", "60"], 120.0, dict(os.environ))[1])
    threading.Timer(1.0, builds.stop).start()
    t0 = time.monotonic()
    env = envs.ensure(ladder.by_id("ai-edge-litert==1.2.0"), tmp_path, log=lambda m: None, builds=builds)
    assert time.monotonic() - t0 < 30 and not env.python
    assert not list(tmp_path.glob("*.failed.json")) and not list(tmp_path.glob(".tmp-*"))


def test_a_library_version_change_measures_again(tmp_path, monkeypatch):
    """The compat cache key has the versions installed in the release's environment and the code that
    runs there (`measure.code_key`): a changed version string re-runs the worker, an unchanged one reads
    the cache."""
    from pipeline import deps
    trivial = ROOT / "pipeline" / "bench" / "data" / "trivial.tflite"     # one ADD, input x of shape [1]
    np.savez(tmp_path / "in.npz", in_0=np.ones(2, np.float32))            # two samples of shape [1]
    item = measure.Item("trivial", trivial, "tflite", fsutil.sha256_file(trivial), tmp_path / "in.npz", "k")

    def rows(it, outs):
        return {"rows": float(len(outs[0]))}
    first = measure.run([item], "ai-edge-litert==2.3.0", rows, tmp_path / "cache", log=lambda m: None)
    assert [(r.status, r.cached, r.metrics) for r in first] == [("ok", False, {"rows": 2.0})], first[0].error
    assert [r.cached for r in measure.run([item], "ai-edge-litert==2.3.0", rows, tmp_path / "cache")] == [True]
    real = deps._version.__wrapped__
    monkeypatch.setattr(deps, "_version", lambda d, site: "2.3.1" if d.replace("_", "-") == "ai-edge-litert"
                        else real(d, site))
    again = measure.run([item], "ai-edge-litert==2.3.0", rows, tmp_path / "cache", log=lambda m: None)
    assert [(r.status, r.cached) for r in again] == [("ok", False)]
