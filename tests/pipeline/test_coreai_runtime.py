"""Core AI's own Linux runtime through the adapter: a real run, the fp16 input conversion, and where the
temporary compiled .aimodelx goes (the process's TMPDIR) and that it does not outlive its handle."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from pipeline import runtimes

ROOT = Path(__file__).resolve().parents[2]
TRIVIAL = ROOT / "pipeline" / "bench" / "data" / "trivial.aimodel"


def test_trivial_model_runs_and_describes():
    a = runtimes.get("coreai")
    assert runtimes.for_format("aimodel") == ["coreai"]
    h = a.load(TRIVIAL)
    out = a.run(h, [np.array([2.5], np.float32)])
    assert out[0].dtype == np.float32 and out[0].tolist() == [3.5]
    assert a.bind(h, [np.zeros([1], np.float32)])() is not None
    d = a.describe(h)
    assert d["inputs"] == [{"name": "input", "shape": [1], "dtype": "float32"}]
    assert "not an iPhone" in d["compute"] and "input_conversion" not in d
    assert a.version() == "1.0.0b3"


def _run(code: str, tmp: Path, wait: bool = True):
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if wait:
        p.wait(timeout=120)
    return p


def test_compiled_folder_lives_in_tmpdir_and_goes_with_the_handle(tmp_path):
    p = _run(f"""
        import gc, os, tempfile
        from pipeline import runtimes
        a = runtimes.get("coreai")
        h = a.load({str(TRIVIAL)!r})
        print(sorted(n for n in os.listdir(tempfile.gettempdir()) if n.endswith(".aimodelx")))
        del h; gc.collect()
        print(sorted(n for n in os.listdir(tempfile.gettempdir()) if n.endswith(".aimodelx")))
    """, tmp_path)
    during, after = p.stdout.read().strip().splitlines()[-2:]
    assert during.count(".aimodelx") == 1 and after == "[]"
    assert not list(tmp_path.iterdir())


def test_killed_worker_leaves_the_compile_only_in_its_tmpdir(tmp_path):
    """SIGKILL while a model is loaded: its .aimodelx stays in TMPDIR (the run's scratch folder, which
    the run removes, or the next run: fsutil.scratch/clean_stale_tmp), nowhere else."""
    before = set(Path("/tmp").glob("*.aimodelx"))
    p = _run(f"""
        import time
        from pipeline import runtimes
        h = runtimes.get("coreai").load({str(TRIVIAL)!r})
        print("loaded", flush=True)
        time.sleep(60)
    """, tmp_path, wait=False)
    assert p.stdout.readline().strip() == "loaded"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert [f.name.endswith(".aimodelx") for f in tmp_path.iterdir()] == [True]
    assert set(Path("/tmp").glob("*.aimodelx")) == before
