"""`cache_io` (LiteRT .tflite from litert-torch or the Keras twin): the caller owns the KV cache and
passes it in and out of every call, with fixed-length prefill signatures and a mask it builds.

Signatures `prefill_<N>` (tokens int32[1,N], input_pos int32[N], mask float32[1,1,N,C], kv_cache_k_<i>
[1,KV,C,D], kv_cache_v_<i> [1,KV,D,C] (V transposed)) -> caches; `decode` (the same with N = 1) ->
caches + logits [1,1,V]. A prompt of n tokens: its first n-1 through the smallest prefill_<N> >= n-1
(padded; the padding writes positions the decode overwrites before anything attends to them), then
its last token through `decode`, whose logits are the first generated token's. The mask is additive:
0 where a row may attend (positions <= its own), the float32 minimum elsewhere.

Imports numpy and ai_edge_litert only: the emulated ARM64 guest runs this same file.
"""
from __future__ import annotations

import numpy as np

from pipeline.generative.session import Session, fixed_length_for, last_logits

NEG = np.float32(np.finfo(np.float32).min)


class CacheIO(Session):
    RUNTIME = "litert"
    CACHE = "passed in and out with a mask for LiteRT"
    PROMPT_EXTRA = 1   # the last prompt token goes through decode
    FIXED_PREFILLS = True

    def _load(self, path: str, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter
        self._it = Interpreter(model_path=path, num_threads=threads)
        sigs = self._it.get_signature_list()
        dec = self.facts.entry_points.get("decode", "decode")
        if dec not in sigs:
            raise ValueError(f"{path}: no '{dec}' signature (has {sorted(sigs)})")
        self._decode_r = self._it.get_signature_runner(dec)
        self._prefill_r = {n: self._it.get_signature_runner(f"prefill_{n}") for n in self.facts.prefill_lengths
                           if f"prefill_{n}" in sigs}
        if not self._prefill_r:
            raise ValueError(f"{path}: none of the signatures prefill_{{{','.join(map(str, self.facts.prefill_lengths))}}} "
                             f"(has {sorted(sigs)})")
        ins = self._decode_r.get_input_details()
        self._kv_spec = {k: (tuple(d["shape"]), d["dtype"]) for k, d in sorted(ins.items()) if k.startswith("kv_cache")}
        self._cache_len = int(ins["mask"]["shape"][-1])
        self._reset()

    def _reset(self) -> None:
        self._kv = {k: np.zeros(shape, dtype) for k, (shape, dtype) in self._kv_spec.items()}

    def _mask(self, positions: np.ndarray) -> np.ndarray:
        cols = np.arange(self._cache_len)
        return np.where(cols[None, :] <= positions[:, None], np.float32(0), NEG)[None, None].astype(np.float32)

    def _run(self, runner, tokens: np.ndarray, positions: np.ndarray) -> dict:
        out = runner(tokens=tokens.astype(np.int32).reshape(1, -1), input_pos=positions.astype(np.int32),
                     mask=self._mask(positions), **self._kv)
        self._kv = {k: out[k] for k in self._kv}
        return out

    def _prefill_entry(self, tokens: np.ndarray, pos: int) -> None:
        """Every token through one prefill signature (padded up to it; past the largest: as they are)."""
        n = len(tokens)
        m = fixed_length_for(self.path, self._prefill_r, n, pos, self._cache_len)
        ids = np.zeros(max(m, n), np.int64)
        ids[:n] = tokens
        self._run(self._prefill_r[m], ids, pos + np.arange(len(ids)))

    def _prefill(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        if len(tokens) > 1:
            self._prefill_entry(tokens[:-1], pos)
        return self._decode(int(tokens[-1]), pos + len(tokens) - 1)

    def _decode(self, token: int, pos: int) -> np.ndarray:
        return last_logits(self._run(self._decode_r, np.array([token]), np.array([pos]))["logits"])

    def describe(self) -> dict:
        sigs = {}
        for name in self._it.get_signature_list():
            r = self._it.get_signature_runner(name)
            sigs[name] = {"inputs": {k: [list(map(int, d["shape"])), np.dtype(d["dtype"]).name]
                                     for k, d in sorted(r.get_input_details().items())},
                          "outputs": {k: [list(map(int, d["shape"])), np.dtype(d["dtype"]).name]
                                      for k, d in sorted(r.get_output_details().items())}}
        return {"entry_points": sigs, "cache": f"passed in and out of every call ({len(self._kv_spec)} tensors; "
                f"V transposed), mask built by the caller, {self._cache_len} positions"}


SESSION = CacheIO
