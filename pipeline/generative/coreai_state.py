"""`coreai_state` (Core AI .aimodel, iOS/macOS 27): the KV cache is Core AI *state*: arrays the caller
allocates once and passes to every call, updated in place by the runtime.

Functions `prefill_<N>` (N in prefill_lengths) and `decode` in one asset; inputs `input_ids` int32
[1, N], `cache_position` int32 [N]; output `logits` float32 [1, N, V] (prefill too); states per layer
(`b_key_cache_<i>`, `b_value_cache_<i>` [1, KV, C, D], `b_cumulative_length_<i>`), their names, shapes
and dtypes read from the function's descriptor. A prompt of n tokens goes through the smallest
prefill_<N> >= n, padded (the padding writes positions after the prompt, which the next decode
overwrites before anything attends to them; cache_position masks the rest); its logits at n - 1 are the
first generated token's. A new sequence gets fresh zero state.

Core AI's Linux CPU runtime (coreai-core) runs it: async, so the session owns an event loop, as the
`coreai` runtime adapter's handle does (pipeline/runtimes/coreai_rt.py). The first `executable()`
compiles the asset to a temporary .aimodelx folder (in $TMPDIR: the run's scratch), part of load time.
"""
from __future__ import annotations

import asyncio
import weakref

import numpy as np

from pipeline.generative.session import Session, fixed_length_for, last_logits


class CoreAIState(Session):
    RUNTIME = "coreai"
    CACHE = "state arrays updated in place for Core AI"
    FIXED_PREFILLS = True

    def _load(self, path: str, threads: int) -> None:
        from coreai.authoring import AIModelAsset
        from pipeline.runtimes.coreai_rt import _DTYPES, _close
        self._loop = asyncio.new_event_loop()
        cm = AIModelAsset.load(path).executable()
        self._closer = weakref.finalize(self, _close, self._loop, cm)   # removes the temporary .aimodelx
        model = self._loop.run_until_complete(cm.__aenter__())
        names = set(model.function_names)
        dec = self.facts.entry_points.get("decode") or "decode"
        if dec not in names:
            raise ValueError(f"{path}: no function '{dec}' (has {sorted(names)})")
        self._decode_f = model.load_function(dec)
        self._prefill_f = {n: model.load_function(f"prefill_{n}") for n in self.facts.prefill_lengths
                           if f"prefill_{n}" in names}
        if not self._prefill_f:
            raise ValueError(f"{path}: none of the functions prefill_{{{','.join(map(str, self.facts.prefill_lengths))}}} "
                             f"(has {sorted(names)})")
        d = self._decode_f.desc
        self._state_spec = {n: ([int(x) for x in d.state_descriptor(n).shape],
                                _DTYPES.get(str(d.state_descriptor(n).dtype), np.float32)) for n in d.state_names}
        self._cache_len = self.facts.context
        self._reset()

    def _reset(self) -> None:
        from coreai.runtime import NDArray
        self._state = {n: NDArray(np.zeros(shape, dtype)) for n, (shape, dtype) in self._state_spec.items()}

    def _run(self, fn, tokens: np.ndarray, positions: np.ndarray) -> np.ndarray:
        from coreai.runtime import NDArray
        feed = {"input_ids": NDArray(np.ascontiguousarray(tokens, np.int32).reshape(1, -1)),
                "cache_position": NDArray(np.ascontiguousarray(positions, np.int32))}
        out = self._loop.run_until_complete(fn(feed, state=self._state))
        return np.asarray(out["logits"].numpy(), np.float32)

    def _prefill(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        n = len(tokens)
        m = fixed_length_for(self.path, self._prefill_f, n, pos, self._cache_len)
        ids = np.zeros(max(m, n), np.int64)
        ids[:n] = tokens
        logits = self._run(self._prefill_f[m], ids, pos + np.arange(len(ids)))
        return logits.reshape(-1, logits.shape[-1])[n - 1].copy()

    def _decode(self, token: int, pos: int) -> np.ndarray:
        return last_logits(self._run(self._decode_f, np.array([token]), np.array([pos])))

    def describe(self) -> dict:
        def specs(desc, names, get):
            return {n: [[int(x) for x in get(n).shape], str(get(n).dtype)] for n in names}
        fns = {}
        for name, fn in [*((f"prefill_{n}", f) for n, f in sorted(self._prefill_f.items())), ("decode", self._decode_f)]:
            d = fn.desc
            fns[name] = {"inputs": specs(d, d.input_names, d.input_descriptor),
                         "outputs": specs(d, d.output_names, d.output_descriptor)}
        return {"entry_points": fns, "cache": f"Core AI state ({len(self._state_spec)} arrays, allocated by the "
                f"caller, updated in place by every call), {self._cache_len} positions",
                "compute": "Core AI's CPU runtime on this Linux host (not an iPhone's GPU or Neural Engine)"}


SESSION = CoreAIState
