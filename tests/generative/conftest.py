"""Fixtures of the generation tests (defined in tiny_lm.py: a tiny random Llama as a Hugging Face folder
and its ONNX file, cached in .cache/test-lm/ by content)."""
from tests.generative.tiny_lm import lm_folder, lm_onnx, lm_reference, other_lm_folder  # noqa: F401
