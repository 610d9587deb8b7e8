"""`python -m pipeline package ./my_lm/ --prompts prompts.txt`: a user's Hugging Face-style language model
folder (config.json + safetensors, a Llama-family architecture, tokenizer.json beside them) -> verified,
benchmarked Android/iOS bundles with the tokenizer, the cache layout and the prefill/decode entry points.

    folder check (filecheck/hf_lm.py: safetensors only, no remote code, nothing run) -> the export contract
    (models.lm_config.LMConfig.from_hf; --context caps the cache) -> the prompts tokenized with the folder's
    tokenizer -> every generative export path (lm_exports.py, a worker) -> the generation bench
    (pipeline/generative/: parity teacher-forced against the folder's own model, TTFT, decode tokens/s,
    peak RSS, what each runtime does past its bounds) -> a choice per platform (choose.pick on the time per
    decoded token) -> DIR/<name>/ written atomically, manifest.json per platform (lm_manifest.py)

Work lives in `<artifacts>/package/<name>/`, keyed by content hashes: a re-run redoes only what changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil
from pipeline.filecheck import hf_lm
from pipeline.filecheck.validate import BadModelFile
from pipeline.package.sources import BadInput

MAX_PROMPTS_BYTES = 1 << 20      # a prompts file is read whole: bounded
TIMED_PROMPTS = 8                # prompts measured (parity and timing); all of the text feeds the perplexity
DEFAULT_CONTEXT = 512            # the cache length when --context is not given (at most the model's own)
RANDOM_PROMPTS = 4               # without --prompts: seeded random token ids, with a warning


@dataclass(frozen=True)
class Prompts:
    """The user's prompts as token ids, and the whole text's tokens (the perplexity windows)."""
    ids: list[np.ndarray]
    stream: np.ndarray
    source: str                  # the file, or "random"
    sha256: str


def contract(folder: hf_lm.LMFolder, context: int = 0):
    """The export contract of the folder (models.lm_config.LMConfig), or one line naming what does not fit."""
    from models.lm_config import LMConfig
    cfg = folder.config
    own = int(cfg.get("max_position_embeddings") or 0)
    if context and own and context > own:
        raise BadInput(f"--context {context}: more than the {own} positions {folder.path / 'config.json'} "
                       "declares (max_position_embeddings)")
    ctx = context or (min(DEFAULT_CONTEXT, own) if own else DEFAULT_CONTEXT)
    try:
        return LMConfig.from_hf(cfg, context=ctx)
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(f"{folder.path / 'config.json'}: {e if not isinstance(e, KeyError) else f'no {e} in it'}"
                       f"; mobilebench packages Llama-family causal LMs") from None


def max_prompt(lm) -> int:
    """The longest prompt every generative artifact of this contract takes (one rule: the sessions')."""
    from pipeline.generative import CONVENTIONS, session_class
    from pipeline.generative.session import LMFacts
    return min(session_class(c).max_prompt(LMFacts.of({"convention": c, **lm.facts()})) for c in CONVENTIONS)


def read_prompts(path: Path | None, tokenizer: Path, lm, new_tokens: int, log=print) -> Prompts:
    """One prompt per non-empty line, tokenized by the folder's tokenizer.json in a sandboxed worker
    (lm_tokenize.py: the parent never opens a file of the folder but to check it). A prompt too long for
    the artifacts, or ids outside the model's vocabulary, is a one-line error naming the line."""
    from pipeline.package import lm_tokenize
    longest = min(max_prompt(lm), lm.context - new_tokens)
    if path is None:
        rng = np.random.default_rng(0)
        ids = [rng.integers(3, lm.vocab, min(16, longest)).astype(np.int64) for _ in range(RANDOM_PROMPTS)]
        log(f"warning: no --prompts: parity and timing on {RANDOM_PROMPTS} prompts of seeded random token ids; "
            "the perplexity is not measured (manifest: prompts \"random\")")
        return Prompts(ids, np.zeros(0, np.int64), "random", "")
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file (--prompts)")
    if path.stat().st_size > MAX_PROMPTS_BYTES:
        raise BadInput(f"{path}: {path.stat().st_size:,} bytes; --prompts takes at most {MAX_PROMPTS_BYTES:,}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not UTF-8 text (byte {e.start})") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines:
        raise BadInput(f"{path}: no prompt in it (one prompt per line)")
    ids = []
    for (n, _), t in zip(lines, lm_tokenize.encode(tokenizer, [ln for _, ln in lines])):
        if len(t) == 0:
            raise BadInput(f"{path}:{n}: the tokenizer gives no token for this line")
        if t.max() >= lm.vocab:
            raise BadInput(f"{path}:{n}: token id {int(t.max())} from {tokenizer.name} is outside the model's "
                           f"vocabulary of {lm.vocab}")
        if len(t) > longest:
            raise BadInput(f"{path}:{n}: {len(t)} tokens; every artifact takes prompts of at most {longest} "
                           f"(prefill bounds of a {lm.context}-position cache, {new_tokens} tokens generated; "
                           "--context to change it)")
        ids.append(t)
    return Prompts(ids, np.concatenate(ids), str(path), fsutil.sha256_file(path))


def workload(targets, g, prompts: Prompts):
    """The generation bench's workload from the user's prompts: the first TIMED_PROMPTS measured; the
    whole text, cut into windows of at most the cache, teacher-forced for the perplexity; the bound
    probes on the text tiled to fill the cache (random ids without --prompts)."""
    from pipeline.generative import bench as gen_bench
    ids = prompts.ids[:TIMED_PROMPTS]
    n = max(len(t) for t in ids)
    padded = np.zeros((len(ids), n), np.int64)
    for i, t in enumerate(ids):
        padded[i, :len(t)] = t
    C = min(t.facts.context for t in targets)
    stream = prompts.stream
    T = min(C, len(stream))
    if T >= 8:
        windows = stream[:len(stream) // T * T].reshape(-1, T)[:2]
        k = min(max(len(t) for t in ids), T // 2)
    else:
        windows, k = np.zeros((0, 2), np.int64), 1
    text = stream if len(stream) else np.concatenate(ids)
    return gen_bench.assemble(targets, g, padded, tuple(len(t) for t in ids), windows, k, text)


def run(o, src, log=print) -> int:
    """The LM flow of `python -m pipeline package` (stage.run hands a `hf_lm` source here)."""
    from pipeline.package import bundle
    try:
        folder = hf_lm.check(src.path)
    except BadModelFile as e:
        raise BadInput(str(e)) from None
    name = o.name or folder.path.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise BadInput(f"--name {name!r}: use letters, digits, '_', '-' and '.' only")
    lm = contract(folder, o.context)
    from pipeline.generative.bench import GenConfig
    g = GenConfig()
    prompts = read_prompts(o.prompts, folder.tokenizer, lm, g.new_tokens, log)
    bundle.check_out(o.out)
    work = o.work_root / name
    with fsutil.run_lock(work, "package"), fsutil.scratch(work):
        bundle.clean_stale(o.out, name)
        from pipeline.package import lm_stage
        return lm_stage.run(o, folder, lm, name, work, prompts, g, log)


def calib_windows(prompts: Prompts, lm) -> np.ndarray:
    """Token windows of the user's text, `context` long (a path that calibrates takes these)."""
    text = prompts.stream if len(prompts.stream) else np.concatenate(prompts.ids)
    return np.resize(text, (max(1, min(8, len(text) // lm.context)), lm.context)).astype(np.int32)
