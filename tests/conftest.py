"""Shared fixtures. The digits artifacts are built once (train + every export path) into a cache
folder keyed by content hashes, so a second `make test` reuses them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TEST_ARTIFACTS = ROOT / ".cache" / "test-artifacts"


@pytest.fixture(scope="session")
def digits_exports():
    """Every export record of the digits model (training included), built with the real toolchains."""
    from export.run import export_model
    records = export_model("digits_cnn", TEST_ARTIFACTS, log=lambda m: None)
    return {(r.source, r.path): r for r in records}


@pytest.fixture(scope="session")
def digits_trained():
    """The digits model trained into the test cache, no export: for tests that export a few paths themselves."""
    import models
    from pipeline.train import train
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
    import importlib.util
    import tempfile
    from pipeline import fsutil
    out = ROOT / ".cache" / "byom-models" / fsutil.source_hash([BYOM_SCRIPT])[:12]
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
