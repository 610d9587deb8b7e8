"""Runtime worker for the operator probes: load each artifact in one runtime, run every input set,
save the outputs and the runtime's own description (operators, what XNNPACK took).

    python -m probes.run_worker JOB.json

Imports only numpy and the runtime (the tflite-runtime worker runs under `.venv-tflite-runtime`).
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np


def input_order(specs: list[dict], arrays: list[np.ndarray]) -> list[int]:
    """Which of our inputs feeds each of the runtime's inputs. TFLite files from Keras may list
    inputs in another order than the model: match the names (in0/args_0), then the shapes."""
    if len(specs) != len(arrays) or len(arrays) < 2:
        return list(range(len(arrays)))
    idx = []
    for s in specs:
        m = re.search(r"(?:^|_)(?:in|args_)(\d+)(?::\d+)?$", s.get("name", ""))
        idx.append(int(m.group(1)) if m else -1)
    if sorted(idx) == list(range(len(arrays))):
        return idx
    shapes = [tuple(a.shape) for a in arrays]
    by_shape = [shapes.index(tuple(s["shape"])) if tuple(s["shape"]) in shapes else -1 for s in specs]
    if sorted(by_shape) == list(range(len(arrays))):
        return by_shape
    return list(range(len(arrays)))


def main() -> int:
    from pipeline import runtimes, workers
    adapter = None

    def one(item: dict, params: dict) -> dict:
        nonlocal adapter
        adapter = adapter or runtimes.get(params["runtime"])
        try:
            handle = (adapter.load(item["artifact"], 1) if item.get("delegates", True)
                      else adapter.load_without_delegates(item["artifact"], 1))
            if handle is None:
                raise RuntimeError(f"{params['runtime']} has no switch for its default delegate")
            with np.load(item["ref"]) as z:
                ref = {k: z[k] for k in z.files}
            outs, order = {}, None
            for s in range(item["sets"]):
                xs = [ref[f"in_{s}_{k}"] for k in range(item["inputs"])]
                if order is None:
                    order = input_order(adapter.describe(handle).get("inputs", []), xs)
                for k, o in enumerate(adapter.run(handle, [xs[i] for i in order])):
                    outs[f"out_{s}_{k}"] = np.asarray(o)
            facts = adapter.describe(handle)  # after the runs: delegation as applied
            tmp = item["outputs"] + ".tmp.npz"
            np.savez(tmp, **outs)
            os.replace(tmp, item["outputs"])
            return {"status": "ok", "info": {k: facts[k] for k in ("ops", "not_delegated", "delegated_ops",
                                                                  "non_delegated_ops", "delegates") if k in facts},
                    "runtime_version": adapter.version(), "input_order": order}
        except Exception as e:  # noqa: BLE001 - the runtime's own error is the finding
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            return {"status": "failed", "error": f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]}
    return workers.serve(one)


if __name__ == "__main__":
    sys.exit(main())
