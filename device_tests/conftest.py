"""Device tests: run the mobile artifacts on the emulated ARM64 device, compare with the host.

Artifacts come from two places, both laid out as <root>/artifacts/<model>/<stem>.<ext> with a
<stem>.record.json and <root>/artifacts/<model>/train/eval.npz:
  * fixtures made in this session by make_fixtures.py (tiny Keras/torch models), so the tests
    mean something before the pipeline has produced anything;
  * the pipeline's own artifacts under the project root (or under $DEVICE_ARTIFACTS_ROOT).
Every test skips with a one-line reason when the device is not built or qemu is missing.
Results go to results/device/records.jsonl at the end of the session.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from cases import all_cases  # noqa: E402
from device import Device  # noqa: E402

def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cases = all_cases()
        metafunc.parametrize("case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def device() -> Device:
    dev, reason = Device.load()
    if dev is None:
        pytest.skip(reason)
    return dev


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory, device) -> Path:
    """Make the fixture artifacts once per session; only for runtimes the device has."""
    root = tmp_path_factory.mktemp("fixtures")
    only = [k for k, rt in (("tflite", "litert"), ("pte", "executorch")) if rt in device.runtimes]
    if not only:
        pytest.skip("no guest runtime installed")
    cmd = [sys.executable, str(HERE / "make_fixtures.py"), str(root)] + (["--only", only[0]] if len(only) == 1 else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    if p.returncode != 0:
        pytest.fail("make_fixtures.py failed:\n" + "\n".join(p.stderr.strip().splitlines()[-15:]))
    return root


@pytest.fixture(scope="session")
def device_results():
    """Records gathered by the tests, written at session end (see pytest_sessionfinish)."""
    return _RESULTS


_RESULTS: list = []


def pytest_sessionfinish(session, exitstatus):
    if not _RESULTS:
        return
    from pipeline.fsutil import write_atomic
    from pipeline.schema import merge, read_records
    out = Path(os.environ.get("DEVICE_RESULTS", ROOT / "results" / "device" / "records.jsonl"))
    try:
        old = read_records(out)
    except ValueError:
        old = []
    recs = merge(old, _RESULTS)
    write_atomic(out, "".join(r.to_json() + "\n" for r in recs))
