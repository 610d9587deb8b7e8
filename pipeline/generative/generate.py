"""The measured generation loop over a `Session`, the same for every convention (numpy only: it also
runs on the emulated ARM64 guest).

    w = Workload.load("workload.npz")
    out = run_prompts(session, w, teacher)          # TTFT, decode times, logits of every step
    nll = heldout(session, w)                       # teacher-forced NLL over the held-out windows
    found = [probe(session, w, p) for p in probes(C, w.probe_lengths)]   # what the RUNTIME does past its bounds

One pass per prompt gives timing and parity together: the prompt is prefilled (time to first token),
then the reference's greedy tokens are decoded one by one (teacher forcing). Until the first step
whose logits pick another token, that is exactly the artifact's own free-running greedy run, so the
first divergent step, the teacher-forced agreement and the logits SQNR of every step come from the
same calls that are timed. Decode tokens/s counts from the second decoded token on (the first
decode call pays one-time setup in some runtimes: mobile_app_open#1121).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pipeline.generative.session import BoundError, Session


@dataclass(frozen=True)
class Workload:
    """What one generation run does, identical for the reference and every artifact of a model."""
    prompts: np.ndarray              # int [P, N]: P prompts, each its first prompt_lengths[p] tokens
    steps: int                       # M greedy steps per prompt (the first from the prefill)
    heldout: np.ndarray              # int [W, T]: held-out windows, teacher-forced (perplexity); W may be 0
    heldout_prefill: int             # K: tokens of each window prefilled before teacher forcing
    probe_tokens: np.ndarray         # int [C + 1]: the bound probes' input (C = the cache length)
    probe_lengths: tuple[int, ...]   # prefill lengths the bound probe tries (each < C)
    prompt_lengths: tuple[int, ...] = ()   # () = every prompt is N tokens

    def __post_init__(self) -> None:
        if self.prompts.ndim != 2 or self.heldout.ndim != 2 or self.steps < 2 or self.probe_tokens.ndim != 1:
            raise ValueError(f"workload: prompts [P,N], held-out [W,T], probe tokens [C+1] and >= 2 steps, got "
                             f"{self.prompts.shape}, {self.heldout.shape}, {self.probe_tokens.shape}, {self.steps}")
        if len(self.heldout) and not 1 <= self.heldout_prefill < self.heldout.shape[1]:
            raise ValueError(f"workload: held-out prefill {self.heldout_prefill} not in [1, {self.heldout.shape[1]})")
        lengths = self.prompt_lengths or (self.prompts.shape[1],) * len(self.prompts)
        if len(lengths) != len(self.prompts) or not all(1 <= n <= self.prompts.shape[1] for n in lengths):
            raise ValueError(f"workload: prompt lengths {lengths} do not fit prompts {self.prompts.shape}")
        if any(not 1 <= n < len(self.probe_tokens) - 1 for n in self.probe_lengths):
            raise ValueError(f"workload: probe lengths {self.probe_lengths} outside [1, {len(self.probe_tokens) - 2}]")
        object.__setattr__(self, "prompt_lengths", tuple(int(n) for n in lengths))

    def prompt(self, p: int) -> np.ndarray:
        return self.prompts[p, :self.prompt_lengths[p]]

    def save(self, path) -> None:
        with open(path, "wb") as f:
            np.savez(f, prompts=self.prompts, heldout=self.heldout, probe_tokens=self.probe_tokens,
                     prompt_lengths=np.array(self.prompt_lengths), probe_lengths=np.array(self.probe_lengths, np.int64),
                     meta=np.array([self.steps, self.heldout_prefill]))

    @classmethod
    def load(cls, path) -> "Workload":
        with np.load(path) as z:
            steps, k = (int(v) for v in z["meta"])
            return cls(z["prompts"], steps, z["heldout"], k, z["probe_tokens"],
                       tuple(int(n) for n in z["probe_lengths"]), tuple(int(n) for n in z["prompt_lengths"]))


def run_prompts(s: Session, w: Workload, teacher: np.ndarray) -> dict:
    """Each prompt prefilled, then `teacher[p]` (the reference's greedy tokens) decoded up to M steps.
    -> {"logits": [P, M, V], "ttft_s": [P], "decode_s": [P, M-2], "cold_ttft_s"}. Prompt 0 runs once
    first, untimed for the figures but kept as the cold time to first token (right after load)."""
    P, M = len(w.prompts), w.steps
    logits = np.zeros((P, M, s.facts.vocab), np.float32)
    ttft, decode_s = np.zeros(P), np.zeros((P, max(M - 2, 0)))
    cold = _one_prompt(s, w.prompt(0), teacher[0], M, logits[0], None)
    for p in range(P):
        ttft[p] = _one_prompt(s, w.prompt(p), teacher[p], M, logits[p], decode_s[p])
    return {"logits": logits, "ttft_s": ttft, "decode_s": decode_s, "cold_ttft_s": cold}


def _one_prompt(s: Session, prompt, teacher, M: int, logits: np.ndarray, decode_s: np.ndarray | None) -> float:
    s.reset()
    t0 = time.perf_counter()
    logits[0] = s.prefill(prompt)
    ttft = time.perf_counter() - t0
    for t in range(1, M):
        t0 = time.perf_counter()
        logits[t] = s.decode(int(teacher[t - 1]))
        if decode_s is not None and t >= 2:   # from the second decoded token on
            decode_s[t - 2] = time.perf_counter() - t0
    return ttft


def log_softmax_at(logits: np.ndarray, target: int) -> float:
    z = logits.astype(np.float64)
    m = z.max()
    return float(z[target] - m - np.log(np.exp(z - m).sum()))


def heldout(s: Session, w: Workload) -> np.ndarray:
    """Teacher-forced negative log-likelihood of every held-out token after the first K of each window
    -> float64 [W, T-K]."""
    W, T = w.heldout.shape
    K = w.heldout_prefill
    nll = np.zeros((W, T - K))
    for i, win in enumerate(w.heldout):
        s.reset()
        lg = s.prefill(win[:K])
        for j in range(K, T):
            nll[i, j - K] = -log_softmax_at(lg, int(win[j]))
            if j < T - 1:
                lg = s.decode(int(win[j]))
    return nll


def probes(context: int, lengths) -> list[dict]:
    """An artifact's bound probes: a decode one past its cache of `context` positions, and a prefill of
    each length (1, its prefill entry point's bound, one past it). Each runs in its own worker item: a
    runtime that crashes natively past a bound costs only that probe."""
    return [{"probe": "context", "length": context + 1, "position": context},
            *({"probe": "prefill", "length": int(n), "position": int(n)} for n in lengths)]


def probe(s: Session, w: Workload, p: dict) -> dict:
    """What the RUNTIME does with one input at or past a declared bound: its raw entry points, no harness
    check in between, then what the harness's checked API says to the same input.
    prefill probe of n: probe_tokens[:n] through the runtime's own prefill entry point, then a decode of
    probe_tokens[n] at position n (so the cache the prefill wrote is read too);
    context probe: the cache filled with probe_tokens[:C] through the checked API, then a raw decode of
    probe_tokens[C] at position C, one past the cache.
    -> {**p, "ran", "error" | "logits" (compared with the reference's at p["position"]), "harness"}."""
    win, C = w.probe_tokens, s.facts.context
    res = dict(p)
    s.reset()
    if p["probe"] == "context":
        k = min(s.max_prompt(s.facts), C)
        s.prefill(win[:k])
        for j in range(k, C):
            s.decode(int(win[j]))
    try:
        if p["probe"] == "prefill":
            s._prefill_entry(win[:p["length"]], 0)
        res.update(ran=True, logits=s._decode(int(win[p["position"]]), p["position"]))
    except Exception as e:  # noqa: BLE001 - a runtime's refusal is the finding
        res.update(ran=False, error=_line(e))
    if p["probe"] == "prefill":
        s.reset()
        res["harness"] = _checked(lambda: s.prefill(win[:p["length"] + s.PROMPT_EXTRA]))
    else:
        res["harness"] = _checked(lambda: s.decode(int(win[C])))
    return res


def probe_label(p: dict) -> str:
    """A bound probe as the report and the bundle's README name it."""
    return f"prefill of {p['length']}" if p["probe"] == "prefill" else f"decode at position {p['length'] - 1}"


def _checked(call) -> str:
    """What the harness's own checked API says: its one-line refusal, or "" when it let the call through."""
    try:
        call()
    except BoundError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - within the bounds the runtime ran it; not the harness's answer
        return f"(passed the harness; the runtime raised {_line(e)})"
    return ""


def _line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else '(no message)'}"[:300]
