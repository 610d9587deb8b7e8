"""The run log (pipeline/runlog.py) and the progress estimate (pipeline/progress.py): library output, native
or Python, of this process and of its children, lands in results/logs/ and our lines stay on the terminal.

    .venv/bin/python -m pytest -q tests/pipeline/test_runlog.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from pipeline import progress, runlog

# a stage in a child process (the CLI's situation: stdout is fd 1): our lines, then library output written
# every way a library writes it -- Python to stdout/stderr, natively to fd 1/2, a child with inherited fds
STAGE = textwrap.dedent("""
    import os, subprocess, sys
    from pathlib import Path
    from pipeline import runlog
    with runlog.session(Path(sys.argv[1]), "export") as say:
        say("[export m 1/2] a: ok")
        print("python stdout noise")
        print("python stderr noise", file=sys.stderr)
        os.write(1, b"native fd1 noise\\n")
        os.write(2, b"native fd2 noise\\n")
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child noise\\\\n')"])
        say("[export m 2/2] b: " + sys.argv[2])
    print("after the stage")
""")


def _stage(tmp_path, status: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", STAGE, str(tmp_path), status], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path):
    p = _stage(tmp_path, "ok")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["[export m 1/2] a: ok", "[export m 2/2] b: ok", "after the stage"], p.stdout
    assert p.stderr == ""
    logs = list((tmp_path / "logs").glob("export-*.log"))
    assert len(logs) == 1, logs
    text = logs[0].read_text()
    for noise in ("python stdout noise", "python stderr noise", "native fd1 noise", "native fd2 noise",
                  "child noise"):
        assert noise in text, (noise, text)
    assert "[export m" not in text


def test_a_failed_step_names_the_log_once_at_the_end(tmp_path):
    p = _stage(tmp_path, "failed in 1.0s: RuntimeError: boom")
    log = next((tmp_path / "logs").glob("export-*.log"))
    assert p.stdout.splitlines()[-2:] == [f"see {log}", "after the stage"], p.stdout


def test_only_failures_count_as_failed_lines():
    assert runlog.failed_line("[export m 1/3] torch__et_portable_fp32: failed in 2.0s: RuntimeError: x")
    assert runlog.failed_line("[bench 2/5] m/a litert big-core: failed: worker killed by signal SIGSEGV (11)")
    assert runlog.failed_line("[export] m: worker killed by signal SIGSEGV (11); last output: Fatal Python error")
    assert runlog.failed_line("[export] m: worker exited with code 1; last output: MemoryError")
    assert runlog.failed_line("error: no export path could export model.pt2")
    assert not runlog.failed_line("[export m 1/3] keras__tflite_int8: unsupported in 0.1s: no int8 for x")
    assert not runlog.failed_line("[bench 1/5] m/a litert big-core: p50 0.02 ms, agree 1.000 (cached)")


@pytest.mark.parametrize("exc, named", [(RuntimeError("crash"), True), (KeyboardInterrupt(), False),
                                        (ValueError("the user's own error"), False)])
def test_an_exception_names_the_log_unless_the_cli_says_it_all(tmp_path, capsys, exc, named):
    with pytest.raises(type(exc)):
        with runlog.session(tmp_path, "bench"):
            os.write(2, b"library noise\n")
            raise exc
    assert ("see " in capsys.readouterr().out) == named


def test_an_empty_log_is_not_named(tmp_path, capsys):
    with runlog.session(tmp_path, "bench") as say:
        say("[bench] m: failed: no runtime")
    assert "see " not in capsys.readouterr().out.splitlines()[-1]


def test_verbose_writes_no_log(tmp_path, capsys):
    with runlog.session(tmp_path, "bench", verbose=True) as say:
        say("[bench 1/1] ours")
    assert capsys.readouterr().out == "[bench 1/1] ours\n"
    assert not (tmp_path / "logs").exists()


def test_old_logs_are_bounded_per_stage(tmp_path):
    d = runlog.logs_dir(tmp_path)
    d.mkdir()
    for i in range(15):
        (d / f"bench-20261201T0000{i:02d}Z.log").write_text("old")
    (d / "export-20261130T000000Z.log").write_text("another stage")
    new = runlog.new_log(tmp_path, "bench", keep=5)
    kept = sorted(f.name for f in d.glob("bench-*.log"))
    assert len(kept) == 5 and new.name in kept and "bench-20261201T000014Z.log" in kept, kept
    assert (d / "export-20261130T000000Z.log").exists()
    assert runlog.new_log(tmp_path, "bench", keep=5) != new      # a second run in the same second


def test_runs_in_one_second_are_pruned_in_the_order_they_ran(tmp_path):
    logs = [runlog.new_log(tmp_path, "quant-debug", keep=3) for _ in range(12)]
    kept = set(runlog.logs_dir(tmp_path).glob("quant-debug-*.log"))
    assert kept == set(logs[-3:]), (sorted(f.name for f in kept), [f.name for f in logs])


def test_follower_copies_whole_lines_tagged(tmp_path, capsys):
    f = tmp_path / "worker.log"
    f.write_bytes(b"first line\nhalf a li")
    follow = runlog.Follower(f, "w 1")
    with runlog.session(tmp_path, "bench", verbose=True):     # -v: the terminal's stderr
        follow()
        assert capsys.readouterr().err == "w 1| first line\n"
        with open(f, "ab") as out:
            out.write(b"ne\nno newline at death")
        follow()
        follow(final=True)
        assert capsys.readouterr().err == "w 1| half a line\nw 1| no newline at death\n"


def test_a_childs_output_is_copied_only_inside_a_session(tmp_path, capfd):
    runlog.to_stderr(["tools and tests call workers without a session"], "w 1")
    assert capfd.readouterr().err == ""
    with runlog.session(tmp_path, "probe"):
        runlog.to_stderr(["converter noise"], "w 1")
    assert capfd.readouterr() == ("", "")
    assert "w 1| converter noise\n" in next(runlog.logs_dir(tmp_path).glob("probe-*.log")).read_text()


def test_time_left():
    assert progress.left(0, 10, 5.0) == "" and progress.left(10, 10, 50.0) == ""
    assert progress.left(1, 4, 10.0) == ", ~30s left"
    assert progress.left(12, 289, 24.0) == ", ~9m14s left"
    assert progress.duration(3 * 3600 + 5 * 60 + 7) == "3h05m"


def test_the_clock_restarts_once_when_the_counted_work_starts():
    p = progress.Progress(total=4, start=0.0)     # as if the stage began long ago (the trainings)
    p.restart_clock()
    first = p.start
    assert first > 0.0
    p.restart_clock()                              # the other slot's first export: no second restart
    assert p.start == first
    assert "h" not in p.tag("[export m 1/4] a: ok")   # timed from the restart: seconds, not hours


def test_the_tag_goes_inside_the_bracket_the_tools_parse():
    p = progress.Progress(total=6)
    line = p.tag("[export digits_cnn 1/3] keras__tflite_fp32: up to date (ok)")
    assert line.startswith("[export digits_cnn 1/3, 1/6 in all, ~") and line.endswith(" left] keras__tflite_fp32: "
                                                                                      "up to date (ok)"), line
    # tests/faults/test_interrupt.py and pipeline/tools/bench_pipeline.py read the stem this way
    assert line.split("] ", 1)[1].split(":")[0] == "keras__tflite_fp32"
    q = progress.Progress(total=2, count=False)
    assert q.tag("[package export 1/2] tflite_fp32: ok").startswith("[package export 1/2, ~")
    assert q.tag("[package export 2/2] tflite_int8: ok") == "[package export 2/2] tflite_int8: ok"


def test_a_results_folder_that_takes_no_log_does_not_stop_the_run(tmp_path, capsys):
    (tmp_path / "logs").write_text("a file where the folder would be")
    with runlog.session(tmp_path, "bench") as say:
        say("[bench 1/1] ours")
    assert capsys.readouterr().out == "[bench 1/1] ours\n"
