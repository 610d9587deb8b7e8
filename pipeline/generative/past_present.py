"""`past_present` (ONNX for ONNX Runtime): one graph, the cache passed in as past key/values and
returned grown as present key/values, every length dynamic.

Inputs `input_ids int64[1,S]`, `past_key_<i>`/`past_value_<i>` float32[1,KV,P,D]; outputs
`logits [1,S,V]`, `present_key_<i>`/`present_value_<i>` [1,KV,P+S,D]. Prefill starts from P = 0; the
presents become the next call's pasts. Nothing in the file bounds P + S: the declared context is
enforced by the harness (`Session`) alone, and the bound probe shows what the runtime does past it.
"""
from __future__ import annotations

import numpy as np

from pipeline.generative.session import Session, last_logits


class PastPresent(Session):
    RUNTIME = "onnxruntime"
    CACHE = "past/present for ONNX Runtime"

    def _load(self, path: str, threads: int) -> None:
        from pipeline.runtimes import onnxruntime_rt
        self._sess = onnxruntime_rt.ADAPTER.load(path, threads)
        ins = self._sess.get_inputs()
        self._ids = ins[0].name
        self._past = [i for i in ins[1:] if i.name.startswith("past_")]
        if len(self._past) != len(ins) - 1:
            raise ValueError(f"{path}: inputs other than the token ids must be past_* caches, got "
                             f"{[i.name for i in ins[1:]]}")
        self._outs = [o.name for o in self._sess.get_outputs()]
        self._reset()

    def _reset(self) -> None:
        # [batch, KV, P, D]: batch 1, no past positions yet
        self._cache = {p.name: np.zeros([d if isinstance(d, int) else int(k == 0) for k, d in enumerate(p.shape)],
                                        np.float32) for p in self._past}

    def _call(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        if pos == 0:
            self._reset()
        outs = self._sess.run(None, {self._ids: np.asarray(tokens, np.int64).reshape(1, -1), **self._cache})
        present = dict(zip(self._outs[1:], outs[1:]))
        self._cache = {p.name: present[p.name.replace("past_", "present_", 1)] for p in self._past}
        return last_logits(outs[0])

    def _prefill(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        return self._call(tokens, pos)

    def _decode(self, token: int, pos: int) -> np.ndarray:
        return self._call(np.array([token]), pos)

    def describe(self) -> dict:
        def spec(a):
            return [[d if isinstance(d, int) else str(d) for d in a.shape], a.type]
        return {"entry_points": {"graph": {"inputs": {i.name: spec(i) for i in self._sess.get_inputs()},
                                           "outputs": {o.name: spec(o) for o in self._sess.get_outputs()}}},
                "cache": "past key/values in, present key/values out (dynamic lengths)"}


SESSION = PastPresent
