"""The generation harness: a prompt of N tokens, then M greedy steps, on every generative artifact, in
the real runtimes, through the worker protocol, emitting `bench` records (issue 26, docs/generative.md).

    python -m pipeline bench --models tier:llm     # export records with info["generation"] come here

One interface (`session.Session`: prefill, decode, reset, bounds) over the KV-cache conventions,
one module each, registered below: a new convention is one module and one line.

    conventions.open_session(path, facts, threads) -> Session

Parts: `generate.py` (the measured loop, numpy only), `reference.py` (the source model, no cache),
`compare.py` (parity figures), `worker.py` (the worker), `bench.py` (the parent: jobs, cache, records),
`device.py` (instructions per decoded token on the emulated ARM64 cores).
"""
from __future__ import annotations

import importlib

from pipeline.generative.session import LMFacts, Session

# convention -> the module whose SESSION drives it (each module imports its runtime lazily)
CONVENTIONS: dict[str, str] = {
    "static_cache": "pipeline.generative.static_cache",
    "cache_io": "pipeline.generative.cache_io",
    "past_present": "pipeline.generative.past_present",
    "coreai_state": "pipeline.generative.coreai_state",
}


def is_generative(r) -> bool:
    """An export record the generation harness measures (`info["generation"]`, llm-contract): the classic
    bench leaves these alone."""
    return "generation" in r.info


def session_class(convention: str) -> type[Session]:
    if convention not in CONVENTIONS:
        raise KeyError(f"unknown cache convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    return importlib.import_module(CONVENTIONS[convention]).SESSION


def runtime_of(convention: str) -> str:
    """The runtime adapter (pipeline/runtimes) a convention runs in."""
    return session_class(convention).RUNTIME


def open_session(path, facts: LMFacts, threads: int = 1) -> Session:
    return session_class(facts.convention)(path, facts, threads)
