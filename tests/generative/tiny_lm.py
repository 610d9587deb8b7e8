"""A tiny random Llama for the generation tests (hidden 64, 2 layers, 4/2 heads, vocab 320, context 64),
as a user would hand it over: a Hugging Face folder (config.json, model.safetensors, tokenizer.json),
plus the artifacts the quick tests run in the real runtimes. Everything is built once per content
(this file, the library versions) into .cache/test-lm/, so a second `make test` reuses it.

    folder = tiny_lm.hf_folder(seed=0)          # the model
    onnx = tiny_lm.onnx_file(folder)            # past_present, TorchScript exporter (about a second)
    aimodel = tiny_lm.coreai_file(folder)       # coreai_state (Core AI), slow tests only
    rec = tiny_lm.export_record(onnx, "past_present", folder)
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pipeline import fsutil
from pipeline.schema import Record

ROOT = Path(__file__).resolve().parents[2]
CONFIG = dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=1,
              eos_token_id=2, pad_token_id=0)
CONTEXT, PREFILL_MAX, PREFILL_LENGTHS = 64, 32, (8, 32)


def _cache_dir(*parts: str) -> Path:
    from importlib.metadata import version
    key = fsutil.sha256_text(Path(__file__).read_bytes(), version("torch"), version("transformers"), *parts)[:12]
    return ROOT / ".cache" / "test-lm" / key


def _build(dest: Path, make) -> Path:
    """`make(tmp)` fills a temp folder that becomes `dest` (a crash leaves no half-built fixture)."""
    from tests.conftest import cache_lock
    with cache_lock():
        return _build_unlocked(dest, make)


def _build_unlocked(dest: Path, make) -> Path:
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
        try:
            make(tmp)
            os.replace(tmp, dest) if not dest.exists() else shutil.rmtree(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _transformers():
    """transformers with Hub kernels off, whichever test builds first (models/lm_hf.py)."""
    from models.lm_hf import transformers
    return transformers()


def tokenizer(dest: Path) -> None:
    """A byte-level BPE of CONFIG's vocabulary trained on this file's own text (nothing downloaded)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    PreTrainedTokenizerFast = _transformers().PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([Path(__file__).read_text()], trainers.BpeTrainer(
        vocab_size=CONFIG["vocab_size"], special_tokens=["<pad>", "<bos>", "<eos>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                            pad_token="<pad>").save_pretrained(str(dest))


def hf_folder(seed: int = 0) -> Path:
    def make(tmp: Path) -> None:
        import torch
        tf = _transformers()
        LlamaConfig, LlamaForCausalLM = tf.LlamaConfig, tf.LlamaForCausalLM
        torch.manual_seed(seed)
        LlamaForCausalLM(LlamaConfig(**CONFIG)).eval().save_pretrained(str(tmp), safe_serialization=True)
        tokenizer(tmp)
    return _build(_cache_dir("hf", str(seed)) / "hf", make)


def onnx_file(folder: Path) -> Path:
    """past_present ONNX of the folder's model: the TorchScript exporter (the zoo's path uses dynamo;
    this one takes about a second and its output is checked against the reference like any other)."""
    def make(tmp: Path) -> None:
        import torch
        AutoModelForCausalLM = _transformers().AutoModelForCausalLM

        from export.llm_onnx_paths import past_present_module   # the zoo path's wrapper, exported with TorchScript
        m = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True).eval()
        L, kv, d = CONFIG["num_hidden_layers"], CONFIG["num_key_value_heads"], CONFIG["hidden_size"] // CONFIG["num_attention_heads"]
        names = [f"past_{k}_{i}" for i in range(L) for k in ("key", "value")]
        outs = ["logits", *[n.replace("past_", "present_") for n in names]]
        with torch.no_grad():
            torch.onnx.export(past_present_module(m, L), (torch.zeros(1, 4, dtype=torch.long),
                                                     *[torch.zeros(1, kv, 3, d) for _ in names]),
                              str(tmp / "model.onnx"), dynamo=False, input_names=["input_ids", *names],
                              output_names=outs, dynamic_axes={"input_ids": {1: "seq"}, "logits": {1: "seq"},
                                                               **{n: {2: "past"} for n in names},
                                                               **{n: {2: "total"} for n in outs[1:]}})
    return _build(_cache_dir("onnx", fsutil.sha256_file(folder)) / "onnx", make) / "model.onnx"


def coreai_file(folder: Path, prefill: int = PREFILL_MAX) -> Path:
    """coreai_state Core AI asset of the folder's model (the Core AI LM paths' recipe: transformers' static-
    cache wrapper, one torch.export per entry point, `prefill_<prefill>` and `decode` in one asset; its
    mutable buffers become Core AI state). About 20 CPU-seconds: the Core AI session test is slow."""
    def make(tmp: Path) -> None:
        import coreai_torch
        import torch
        tf = _transformers()
        AutoModelForCausalLM, GenerationConfig = tf.AutoModelForCausalLM, tf.GenerationConfig
        from transformers.integrations.executorch import TorchExportableModuleWithStaticCache
        m = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True).eval()
        m.generation_config = GenerationConfig(use_cache=True, cache_implementation="static", bos_token_id=1,
                                               eos_token_id=2, cache_config={"batch_size": 1, "max_cache_len": CONTEXT})
        wrapper = TorchExportableModuleWithStaticCache(m, batch_size=1, max_cache_len=CONTEXT)
        conv = coreai_torch.TorchConverter()
        for name, n in {f"prefill_{prefill}": prefill, "decode": 1}.items():
            with torch.no_grad():
                ep = torch.export.export(wrapper, (), {"input_ids": torch.zeros(1, n, dtype=torch.long),
                                                       "cache_position": torch.arange(n)}, strict=True)
            conv.add_exported_program(ep.run_decompositions(coreai_torch.get_decomp_table()),
                                      input_names=["input_ids", "cache_position"], output_names=["logits"],
                                      entrypoint_name=name)
        conv.to_coreai().save_asset(tmp / "model.aimodel")
    key = _cache_dir("coreai", fsutil.sha256_file(folder / "model.safetensors"), str(prefill))
    return _build(key / "coreai", make) / "model.aimodel"


def heldout(artifacts: Path, model: str, windows: int = 8, seed: int = 0) -> Path:
    """artifacts/<model>/train/eval.npz with `x`: token windows of `context` tokens (the zoo's layout)."""
    f = artifacts / model / "train" / "eval.npz"
    f.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f, x=np.random.default_rng(seed).integers(3, CONFIG["vocab_size"], (windows, CONTEXT)).astype(np.int32))
    return f


def generation(convention: str, folder: Path | None = None) -> dict:
    """info["generation"] as the generative export paths write it (llm-contract)."""
    return {"convention": convention, "vocab": CONFIG["vocab_size"], "context": CONTEXT, "prefill_max": PREFILL_MAX,
            "prefill_lengths": list(PREFILL_LENGTHS), "layers": CONFIG["num_hidden_layers"],
            "entry_points": {"prefill": ["forward"], "decode": "forward"} if convention == "static_cache" else {},
            "hf_folder": str(folder or ""), "tokenizer": str(folder / "tokenizer.json") if folder else ""}


def export_record(artifact: Path, convention: str, folder: Path, model: str = "tiny", path: str = "",
                  quantization: str = "fp32", source: str = "torch") -> Record:
    """An export record as the generative export paths write it."""
    fmt = artifact.suffix.lstrip(".")
    gen = generation(convention, folder)
    return Record(kind="export", model=model, status="ok", source=source, path=path or f"{fmt}_{convention}",
                  format=fmt, framework="pytorch", quantization=quantization, artifact=str(artifact),
                  artifact_sha256=fsutil.sha256_file(artifact), info={"generation": gen})


# fixtures: imported by the test modules that use them (a conftest.py in tests/generative/ would shadow
# the top-level tests/conftest.py that other tests import as `conftest`)
@pytest.fixture(scope="session")
def lm_folder() -> Path:
    return hf_folder(seed=0)


@pytest.fixture(scope="session")
def other_lm_folder() -> Path:
    """The same architecture with other weights: an artifact that is NOT its reference's."""
    return hf_folder(seed=1)


@pytest.fixture(scope="session")
def lm_onnx(lm_folder) -> Path:
    return onnx_file(lm_folder)


@pytest.fixture(scope="session")
def lm_reference(lm_folder):
    """The folder's model as the harness's reference (a full forward, no cache), in this process."""
    from pipeline.generative import reference
    return reference.load({"kind": "hf", "path": str(lm_folder)})
