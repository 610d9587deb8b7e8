"""Generation on the emulated ARM64 guest (and the same script on the host): instructions per decoded
token, counted by the QEMU plugin between markers (`device_tests/runner.py`: an lseek the plugin sees).

    python -m pipeline.generative.guest JOBS.json    # [{"artifact", "facts", "workload", "teacher", "outputs"}]

Per job j, with the first prompt of its workload: markers 4j+1 / 4j+2 around the prefill (the time to
first token, in instructions), 4j+3 / 4j+4 around the decode steps from the second decoded token on
(the first decode call is left out, as on the host). Decodes the reference's greedy tokens (teacher
forcing), so the logits are compared with the reference's step by step. Imports numpy and the runtime
only (the guest has no torch); every job in ONE process (the runtime's import is paid once: minutes
under emulation).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np


def run_job(job: dict, j: int) -> None:
    from device_tests.runner import marker
    from pipeline.generative import open_session
    from pipeline.generative.generate import Workload
    from pipeline.generative.session import LMFacts
    s = open_session(job["artifact"], LMFacts.of(job["facts"]), 1)
    w = Workload.load(job["workload"])
    with np.load(job["teacher"]) as z:
        teacher = z["tokens"][0]
    prompt, M = w.prompt(0), w.steps
    logits = np.zeros((1, M, s.facts.vocab), np.float32)
    s.reset()                      # warm: one untimed pass (first-call setup is not a token's cost)
    s.prefill(prompt)
    s.decode(int(teacher[0]))
    s.reset()
    base = 4 * j
    marker(base + 1)
    logits[0, 0] = s.prefill(prompt)
    marker(base + 2)
    logits[0, 1] = s.decode(int(teacher[0]))
    marker(base + 3)
    for t in range(2, M):
        logits[0, t] = s.decode(int(teacher[t - 1]))
    marker(base + 4)
    meta = {"marker_base": base, "decode_tokens": M - 2, "prompt_tokens": int(len(prompt))}
    tmp = job["outputs"] + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, logits=logits, meta=np.array(json.dumps(meta)))
    os.replace(tmp, job["outputs"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        jobs = json.load(f)
    failed = 0
    for j, job in enumerate(jobs):
        try:
            run_job(job, j)
        except Exception as e:  # noqa: BLE001 - one bad artifact must not hide the others' results
            failed += 1
            print(f"guest: job {j} ({job['artifact']}) failed: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
