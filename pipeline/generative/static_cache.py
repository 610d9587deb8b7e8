"""`static_cache` (ExecuTorch .pte): the KV cache lives inside the program as mutable buffers.

`forward(tokens int64[1,S], cache_position int64[S]) -> logits float32[1,S,V]` serves prefill (S in
[1, prefill_max]) and decode (S = 1); a program with separate entry points (the zoo's: `forward` for
the prefill, a static-shape `decode` sharing the cache) names them in `entry_points`
({"prefill": [...], "decode": ...}). A new sequence writes from position 0 again: the
entries left past the new position are masked through cache_position (checked on every run: the
harness's second prompt starts over in the same loaded program).
"""
from __future__ import annotations

import numpy as np

from pipeline.generative.session import Session, last_logits


class StaticCache(Session):
    RUNTIME = "executorch"
    CACHE = "the cache inside the program for ExecuTorch"

    def _load(self, path: str, threads: int) -> None:
        import torch
        from pipeline.runtimes.executorch_rt import bindings
        portable_lib, Runtime = bindings()
        portable_lib._unsafe_reset_threadpool(threads)
        self._torch = torch
        program = Runtime.get().load_program(path)
        names = {k: _first(self.facts.entry_points.get(k)) or "forward" for k in ("prefill", "decode")}
        missing = sorted(set(names.values()) - set(program.method_names))
        if missing:
            raise ValueError(f"{path}: program has no method {', '.join(missing)} (has {sorted(program.method_names)})")
        methods = {n: program.load_method(n) for n in set(names.values())}
        self._program, self._prefill_m, self._decode_m = program, methods[names["prefill"]], methods[names["decode"]]
        self._names = names

    def _reset(self) -> None:
        pass   # positions are written again from 0; what is past them is masked

    def _call(self, method, tokens: np.ndarray, pos: int) -> np.ndarray:
        t = self._torch
        ids = t.from_numpy(np.ascontiguousarray(tokens, np.int64).reshape(1, -1))
        return last_logits(method.execute([ids, t.arange(pos, pos + ids.shape[1], dtype=t.long)])[0])

    def _prefill(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        return self._call(self._prefill_m, tokens, pos)

    def _decode(self, token: int, pos: int) -> np.ndarray:
        return self._call(self._decode_m, np.array([token]), pos)

    def describe(self) -> dict:
        out = {}
        for role, name in self._names.items():
            meta = (self._prefill_m if role == "prefill" else self._decode_m).metadata
            out[role] = {"method": name,
                         "inputs": [list(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())],
                         "outputs": [list(meta.output_tensor_meta(i).sizes()) for i in range(meta.num_outputs())]}
        return {"entry_points": out, "cache": "inside the program (mutable buffers)"}


def _first(name) -> str:
    """An entry point's method name (the export record may list several prefill methods)."""
    return (name[0] if name else "") if isinstance(name, (list, tuple)) else (name or "")


SESSION = StaticCache
