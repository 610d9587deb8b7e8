"""The OS sandbox of the workers that open a user's model (pipeline/sandbox.py, `workers.Job(sandbox=...)`),
with real bubblewrap and a worker that runs what a hostile file asks WITHOUT any pre-check: the sandbox
alone must stop it (defence in depth)."""
from __future__ import annotations

import os

import pytest

from pipeline import sandbox, workers

CHILD = "tests.pipeline.unchecked_worker"
pytestmark = pytest.mark.skipif(not sandbox.enabled(), reason="MOBILEBENCH_SANDBOX=off")


def _run(items, box):
    return workers.run(workers.Job(CHILD, tuple({"id": i, **it} for i, it in enumerate(items)), timeout_s=300,
                                   sandbox=box))


def test_writes_reads_and_network_are_limited(tmp_path):
    work, src, secret = tmp_path / "work", tmp_path / "src", tmp_path / "secret"
    src.mkdir()
    (src / "model.bin").write_text("weights")
    secret.mkdir()
    (secret / "token").write_text("s3cr3t")
    out = _run([{"do": "write", "path": str(work / "ok.txt")}, {"do": "write", "path": str(src / "evil")},
                {"do": "write", "path": str(secret / "evil")}, {"do": "read", "path": str(src / "model.bin")},
                {"do": "read", "path": str(secret / "token")}, {"do": "read", "path": os.path.expanduser("~/.bashrc")},
                {"do": "connect"}, {"do": "env"}],
               sandbox.Sandbox(reads=(src,), writes=(work,)))
    assert out[0]["status"] == "ok" and (work / "ok.txt").read_text() == "x"
    assert "Read-only file system" in out[1]["error"] and not (src / "evil").exists(), out[1]
    assert out[2]["status"] == "failed" and not (secret / "evil").exists(), out[2]
    assert out[3] == {"status": "ok", "text": "weights"}
    assert out[4]["status"] == "failed" and "No such file" in out[4]["error"], out[4]
    assert out[5]["status"] == "failed", out[5]
    assert out[6]["status"] == "failed" and "unreachable" in out[6]["error"], out[6]
    env = out[7]["env"]
    assert env["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] == "1" and env["HOME"] != os.environ.get("HOME")
    assert not any(k in env for k in ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "SSH_AUTH_SOCK", "AWS_SECRET_ACCESS_KEY"))


def test_a_crash_inside_is_named_by_its_signal():
    out = _run([{"do": "crash"}, {"do": "write", "path": "/nonexistent/x"}], sandbox.Sandbox())
    assert out[0]["death"] == "crash" and "SIGABRT" in out[0]["error"], out[0]


def test_savedmodel_write_op_fails_inside_without_any_precheck(tmp_path):
    """tf.io.write_file in the serving signature, run by TensorFlow itself: the write fails in the sandbox."""
    from tests.hostile import savedmodel_with_write
    sm = tmp_path / "sm"
    marker = sm / "written_by_the_model"          # inside the (read-only) source folder
    savedmodel_with_write(sm, marker)
    out = _run([{"do": "savedmodel", "path": str(sm)}], sandbox.Sandbox(reads=(sm,), writes=(tmp_path / "work",)))
    # TensorFlow's WriteFile kernel: EROFS -> PermissionDeniedError
    assert out[0]["status"] == "failed" and out[0]["error"].startswith("PermissionDeniedError"), out[0]
    assert not marker.exists()


def test_refused_with_one_line_when_bwrap_cannot_run(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))         # no bwrap on PATH
    sandbox._probe.cache_clear()
    try:
        with pytest.raises(sandbox.Unavailable, match="bubblewrap .* not installed.*--no-sandbox"):
            _run([{"do": "env"}], sandbox.Sandbox())
        monkeypatch.setenv(sandbox.ENV_SWITCH, "off")   # the user's explicit opt-out: runs, unsandboxed
        assert _run([{"do": "env"}], sandbox.Sandbox())[0]["status"] == "ok"
        assert sandbox.status()["sandbox"] == "off"
    finally:
        sandbox._probe.cache_clear()
