"""Fixtures of the generation tests: a tiny random Llama as a Hugging Face folder and its ONNX file
(tiny_lm.py), cached in .cache/test-lm/ by content."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_lm  # noqa: E402


@pytest.fixture(scope="session")
def lm_folder() -> Path:
    return tiny_lm.hf_folder(seed=0)


@pytest.fixture(scope="session")
def other_lm_folder() -> Path:
    """The same architecture with other weights: an artifact that is NOT its reference's."""
    return tiny_lm.hf_folder(seed=1)


@pytest.fixture(scope="session")
def lm_onnx(lm_folder) -> Path:
    return tiny_lm.onnx_file(lm_folder)


@pytest.fixture(scope="session")
def lm_reference(lm_folder):
    """The folder's model as the harness's reference (a full forward, no cache), in this process."""
    from pipeline.generative import reference
    return reference.load({"kind": "hf", "path": str(lm_folder)})
