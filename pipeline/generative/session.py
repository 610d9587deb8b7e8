"""One interface over the KV-cache conventions: a `Session` is one loaded generative artifact that
takes a prompt (`prefill`) and then one token at a time (`decode`), each returning the next token's
logits, while it tracks the position and enforces the artifact's declared bounds.

    s = conventions.open_session(path, LMFacts.of(record.info["generation"]), threads=1)
    logits = s.prefill(prompt_ids)        # float32 [vocab]: the first generated token's logits
    logits = s.decode(int(logits.argmax()))
    s.reset()                              # a new sequence from position 0

A convention (`static_cache.py`, `cache_io.py`, `past_present.py`, `coreai_state.py`) implements `_load`, `_reset`,
`_prefill(tokens, pos)` and `_decode(token, pos)` with no checks: the bound probe (`generate.probe`)
calls those raw to see what the RUNTIME does past a bound (executorch#20546: bounds not enforced at run
time), while `prefill`/`decode` refuse anything outside the declared bounds with a one-line `BoundError`
before the runtime sees it. Imports numpy only (and the runtime, inside `_load`): the same code runs
in the bench worker and on the emulated ARM64 guest.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class BoundError(ValueError):
    """A prompt or position outside the artifact's declared bounds (refused before the runtime runs)."""


@dataclass(frozen=True)
class LMFacts:
    """What the harness needs to drive one generative artifact: the export record's
    `info["generation"]` (/work/coord/llm-contract.md), validated."""
    convention: str
    vocab: int
    context: int                          # positions the cache holds (prompt + generated)
    prefill_max: int                      # dynamic prefill: S in [1, prefill_max]
    prefill_lengths: tuple[int, ...] = ()  # fixed-length prefills (cache_io, coreai_state): one entry point per N
    entry_points: dict = field(default_factory=dict)
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0

    def __post_init__(self) -> None:
        from pipeline.generative import CONVENTIONS   # the registry (this module is imported by it)
        if self.convention not in CONVENTIONS:
            raise ValueError(f"generation convention {self.convention!r} not in {tuple(CONVENTIONS)}")
        if self.vocab < 2 or self.context < 2 or not 1 <= self.prefill_max <= self.context:
            raise ValueError(f"generation facts out of range: vocab {self.vocab}, context {self.context}, "
                             f"prefill_max {self.prefill_max}")
        from pipeline.generative import session_class
        if session_class(self.convention).FIXED_PREFILLS and not self.prefill_lengths:
            raise ValueError(f"a {self.convention} artifact needs its prefill_lengths (one entry point per length)")

    @classmethod
    def of(cls, info: dict) -> "LMFacts":
        g = info.get("generation", info)
        return cls(convention=g["convention"], vocab=int(g["vocab"]), context=int(g["context"]),
                   prefill_max=int(g["prefill_max"]), prefill_lengths=tuple(int(n) for n in g.get("prefill_lengths") or ()),
                   entry_points=dict(g.get("entry_points") or {}), layers=int(g.get("layers", 0)),
                   kv_heads=int(g.get("kv_heads", 0)), head_dim=int(g.get("head_dim", 0)))


class Session:
    """A loaded generative artifact (one convention). Subclasses set RUNTIME (a `pipeline.runtimes` name)."""
    RUNTIME = ""
    CACHE = ""         # how this convention holds the KV cache, for the report's prose
    PROMPT_EXTRA = 0   # prompt tokens beyond what the prefill entry point takes (cache_io decodes the last)
    FIXED_PREFILLS = False   # prefill entry points of fixed lengths (facts.prefill_lengths), padded up to

    def __init__(self, path, facts: LMFacts, threads: int = 1):
        self.path, self.facts, self.pos = str(path), facts, 0
        self._load(self.path, int(threads))

    @classmethod
    def prefill_bound(cls, facts: LMFacts) -> int:
        """The longest sequence the runtime's own prefill entry point declares."""
        return max(facts.prefill_lengths) if cls.FIXED_PREFILLS else facts.prefill_max

    @classmethod
    def max_prompt(cls, facts: LMFacts) -> int:
        """The longest prompt one `prefill` takes."""
        return cls.prefill_bound(facts) + cls.PROMPT_EXTRA

    def reset(self) -> None:
        self.pos = 0
        self._reset()

    def prefill(self, tokens) -> np.ndarray:
        """The prompt from the current position; -> the next token's logits (float32 [vocab])."""
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        n, f, most = len(tokens), self.facts, self.max_prompt(self.facts)
        if not 1 <= n <= most:
            raise BoundError(f"{_name(self.path)}: a prompt of {n} tokens is outside the declared prefill bounds "
                             f"[1, {most}]")
        if self.pos + n > f.context:
            raise BoundError(f"{_name(self.path)}: {self.pos} + {n} prompt tokens exceed the cache of {f.context} positions")
        if np.any(tokens < 0) or np.any(tokens >= f.vocab):
            raise BoundError(f"{_name(self.path)}: prompt token ids outside the vocabulary [0, {f.vocab})")
        out = self._prefill(tokens, self.pos)
        self.pos += n
        return out

    def decode(self, token: int) -> np.ndarray:
        """One token at the current position; -> the next token's logits."""
        if self.pos >= self.facts.context:
            raise BoundError(f"{_name(self.path)}: position {self.pos} is past the cache of {self.facts.context} positions")
        if not 0 <= int(token) < self.facts.vocab:
            raise BoundError(f"{_name(self.path)}: token id {token} outside the vocabulary [0, {self.facts.vocab})")
        out = self._decode(int(token), self.pos)
        self.pos += 1
        return out

    # ---- what a convention implements (no checks: the bound probe calls these raw)
    def _load(self, path: str, threads: int) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _prefill(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, token: int, pos: int) -> np.ndarray:
        raise NotImplementedError

    def _prefill_entry(self, tokens: np.ndarray, pos: int) -> None:
        """Every token through the runtime's prefill entry point, raw (the bound probe)."""
        self._prefill(tokens, pos)

    def describe(self) -> dict:
        """Entry points and cache layout as the file declares them."""
        return {}


def fixed_length_for(path: str, lengths, n: int, pos: int, cache_len: int) -> int:
    """Fixed-length prefills: the smallest length >= n whose padding stays in the cache (a write past the
    cache end would be clamped by the runtime onto valid entries); past every length, the largest (what
    the raw bound probe hands the runtime)."""
    fits = [m for m in sorted(lengths) if m >= n]
    if not fits:
        return max(lengths)
    inside = [m for m in fits if pos + m <= cache_len]
    if not inside:
        raise BoundError(f"{_name(path)}: no prefill entry point of >= {n} tokens fits the cache at position {pos} "
                         f"(lengths {sorted(lengths)}, cache {cache_len})")
    return inside[0]


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def last_logits(x) -> np.ndarray:
    """[1, S, V] (or [S, V], [V]) -> the last position's logits as float32 [V]."""
    a = np.asarray(x, np.float32)
    return a.reshape(-1, a.shape[-1])[-1].copy()
