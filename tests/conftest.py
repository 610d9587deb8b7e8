"""Shared fixtures. The digits artifacts are built once (train + every export path) into a cache
folder keyed by content hashes, so a second `make test` reuses them."""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TEST_ARTIFACTS = ROOT / ".cache" / "test-artifacts"


# the longest test files, started first: `make test`'s two workers take files in collection order, and a
# long file taken last would leave one core idle at the end (durations: docs/budgets.md)
LONGEST_FIRST = ("tests/package/test_package_bundle.py", "tests/faults/test_interrupt.py",
                 "tests/package/test_package_bad_inputs.py", "tests/faults/test_bad_inputs.py",
                 "tests/bench/test_harness.py", "tests/faults/test_reliability.py", "tests/bench/test_device_column.py",
                 "tests/quant/test_quant_debug.py")


def pytest_collection_modifyitems(items):
    rank = {f: i for i, f in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(it.nodeid.split("::")[0], len(rank)))   # stable: the rest keep their order


@contextlib.contextmanager
def cache_lock():
    """One builder of the shared test caches at a time: `make test` runs in two pytest-xdist workers,
    and the second one to need a cache waits here, then finds it built (a cache hit). Re-entrant in a
    process (a fixture built inside another's build), marked in the environment because this module is
    imported under two names (`conftest`, `tests.conftest`)."""
    held = "MOBILEBENCH_TEST_CACHE_LOCK"
    if os.environ.get(held) == str(os.getpid()):
        yield
        return
    lock = ROOT / ".cache" / ".test-cache.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        os.environ[held] = str(os.getpid())
        try:
            yield
        finally:
            os.environ.pop(held, None)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def digits_exports():
    """Every export record of the digits model (training included), built with the real toolchains."""
    from export.run import export_model
    with cache_lock():
        records = export_model("digits_cnn", TEST_ARTIFACTS, log=lambda m: None)
    return {(r.source, r.path): r for r in records}


@pytest.fixture(scope="session")
def digits_trained():
    """The digits model trained into the test cache, no export: for tests that export a few paths themselves."""
    import models
    from pipeline.train import train
    with cache_lock():
        train(models.get("digits_cnn"), TEST_ARTIFACTS, log=lambda m: None)
    return TEST_ARTIFACTS / "digits_cnn" / "train"


@pytest.fixture(scope="session")
def digits_eval(digits_exports):
    import models
    from pipeline.train import load_eval
    return load_eval(models.get("digits_cnn"), TEST_ARTIFACTS)


BYOM_SCRIPT = ROOT / "scripts" / "make_byom_models.py"


@pytest.fixture(scope="session")
def byom_dir():
    """Users' own files made by the frameworks' own tools (scripts/make_byom_models.py), once per script
    version into .cache (TensorFlow + ExecuTorch conversions take a while)."""
    from pipeline import fsutil
    out = ROOT / ".cache" / "byom-models" / fsutil.source_hash([BYOM_SCRIPT])[:12]
    with cache_lock():
        return _make_byom(out)


def _make_byom(out: Path) -> Path:
    import importlib.util
    import tempfile
    if not (out / "needs_shape.ptl").exists():
        spec = importlib.util.spec_from_file_location("make_byom_models", BYOM_SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-byom-", dir=out.parent))
        mod.make_all(tmp)
        if not out.exists():
            os.replace(tmp, out)    # a folder renamed whole: never half-made
    return out
