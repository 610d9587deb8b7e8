"""The version ladder's worker: one released runtime (the interpreter of its environment) loads and runs
each artifact of its format on the reference samples and saves the outputs.

    python -m pipeline.compat.worker JOB.json                       # through pipeline/workers.py
    python -m pipeline.compat.worker --check ADAPTER_MODULE MODEL   # a new environment's own check

Imports only numpy and the rung's runtime adapter (it runs in environments with numpy 1.x and no
torch). Each item: {"artifact", "samples": .npz with in_0.. (batch first), "outputs": .npz to write};
each sample is fed as a batch of one. A failure says at which stage ("load" or "run") and keeps the
runtime's whole message: the parent reads what the runtime lacks from it (`lacks.py`).
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np

from pipeline.workers import serve

ERROR_CHARS = 2000


def _error(stage: str, e: BaseException) -> dict:
    text = str(e).strip()
    return {"status": "failed", "stage": stage, "error": f"{type(e).__name__}: {text}"[:ERROR_CHARS]}


def run_item(adapter, item: dict) -> dict:
    try:
        handle = adapter.load(item["artifact"], 1)
    except Exception as e:  # noqa: BLE001 - "does this release load it" is the measurement
        return _error("load", e)
    try:
        with np.load(item["samples"]) as z:
            arrays = [z[f"in_{i}"] for i in range(len(z.files))]
        per = [adapter.run(handle, [a[i:i + 1] for a in arrays]) for i in range(len(arrays[0]))]
        outs = {f"out_{k}": np.concatenate([p[k] for p in per]) for k in range(len(per[0]))}
        tmp = item["outputs"] + ".tmp.npz"
        np.savez(tmp, **outs)
        os.replace(tmp, item["outputs"])
    except Exception as e:  # noqa: BLE001
        return _error("run", e)
    return {"status": "ok", "version": adapter.version()}


def check(adapter_module: str, model: str) -> None:
    """A new environment's check: the adapter imports, loads a one-operator model every release reads
    and runs it on zeros (raises otherwise: the build is then a recorded failure)."""
    adapter = importlib.import_module(adapter_module).ADAPTER
    handle = adapter.load(model, 1)
    ins = adapter.describe(handle)["inputs"]
    adapter.run(handle, [np.zeros([max(int(d), 1) for d in s["shape"]], s["dtype"]) for s in ins])
    print(f"{adapter_module} {adapter.version()} runs {os.path.basename(model)}")


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--check":
        check(argv[2], argv[3])
        return 0
    adapters: dict = {}

    def handle(item: dict, params: dict) -> dict:
        if params["adapter"] not in adapters:
            adapters[params["adapter"]] = importlib.import_module(params["adapter"]).ADAPTER
        return run_item(adapters[params["adapter"]], item)
    return serve(handle, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
