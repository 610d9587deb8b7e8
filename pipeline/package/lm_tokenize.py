"""The user's prompts tokenized by their folder's tokenizer.json, in a sandboxed worker: the tokenizer is
a file of the user's folder like the weights (its pre-tokenizer regexes could take unbounded time on a
crafted pattern), so the parent never opens it; a worker that hangs or crashes is a one-line error.

    ids = lm_tokenize.encode(Path("my_lm/tokenizer.json"), ["line one", "line two"])   # parent side
    python -m pipeline.package.lm_tokenize JOB.json                                    # the worker

The worker reads the tokenizer (the `tokenizers` library: data only, nothing in it runs) and the lines
from its job file, and returns each line's token ids.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TIMEOUT_S = 120.0       # tokenizing at most 1 MB of prompts: far less; a pattern that hangs is killed


def encode(tokenizer: Path, lines: list[str]) -> list[np.ndarray]:
    """Each line's token ids; BadInput (one line naming the tokenizer) when the worker fails, hangs or dies."""
    from pipeline import sandbox, workers
    from pipeline.package.sources import BadInput
    tokenizer = Path(tokenizer).resolve()
    job = workers.Job("pipeline.package.lm_tokenize", ({"id": "prompts", "lines": lines},),
                      params={"tokenizer": str(tokenizer)}, timeout_s=TIMEOUT_S,
                      sandbox=sandbox.Sandbox(reads=(tokenizer,)))
    res = workers.run(job)["prompts"]
    if res["status"] != "ok":
        raise BadInput(f"{tokenizer}: the tokenizer cannot tokenize the prompts: {res.get('error', '?')}")
    return [np.asarray(t, np.int64) for t in res["ids"]]


def handle(item: dict, params: dict) -> dict:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(params["tokenizer"])
    return {"status": "ok", "ids": [tok.encode(ln).ids for ln in item["lines"]]}


if __name__ == "__main__":
    from pipeline.workers import serve
    sys.exit(serve(handle))
