"""The user's model opened in a sandboxed worker: load it (after the pre-checks), check the samples against
its inputs, and compute the reference outputs; the parent never loads the model itself.

    prep = reference.prepare(src, samples, calib, eval_npz, work)    # parent side -> Prepared
    python -m pipeline.package.reference JOB.json                     # the worker (pipeline/workers.py)

The worker writes `work/inputs/{samples,calib,eval,refs,weights}.npz` and returns the input specs and the
content hashes; a BadInput in it (a hostile file, bad samples, NaN outputs) comes back as one line and is
raised again here. Runs in the OS sandbox (pipeline/sandbox.py): reads the source and the sample files,
writes the work folder only.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIMEOUT_S = 1800.0
BAD_INPUT = "BadInput: "


@dataclass
class Prepared:
    framework: str
    inputs: list                   # TensorSpec per model input
    calibration: str               # "user" | "random"
    n_samples: int
    shapes: list                   # each input's samples array shape
    samples_sha: str
    calib_sha: str
    eval_sha: str
    weights_sha: str               # a factory's parameters ("" otherwise)
    refs: list
    ref_eval: list | None
    labels: np.ndarray | None
    facts: dict


def _save(path: Path, arrays: list[np.ndarray]) -> str:
    from pipeline import fsutil
    fsutil.save_npz(path, **{f"in_{i}": a for i, a in enumerate(arrays)})
    return fsutil.sha256_text(*[a.tobytes() + str(a.shape).encode() + str(a.dtype).encode() for a in arrays])


def outputs(loaded, arrays: list[np.ndarray], what: str) -> list[np.ndarray]:
    """The model on each sample (a batch of one); a NaN or Inf output is the model's fault: one line."""
    per = []
    for i in range(len(arrays[0])):
        out = loaded.run([a[i:i + 1] for a in arrays])
        for k, o in enumerate(out):
            if not np.isfinite(o).all():
                from pipeline.package.sources import BadInput
                raise BadInput(f"the model's output {k} is NaN or Inf on {what} sample {i}: no artifact could "
                               "be checked against it")
        per.append(out)
    return [np.concatenate([p[k] for p in per]) for k in range(len(per[0]))]


def one(item: dict, params: dict) -> dict:
    """The worker: load, read the samples (or make random ones), reference outputs, everything saved."""
    from pipeline.package import samples, sources
    s = item["source"]
    src = sources.Source(s["kind"], Path(s["path"]), s["function"], s["signature"])
    inputs_dir = Path(item["inputs_dir"])
    try:
        loaded = sources.load(src)
        if item["samples"]:
            xs, calibration = samples.read(Path(item["samples"]), loaded.inputs), "user"
        else:
            xs, calibration = samples.random(loaded.inputs), "random"
        calib = samples.read(Path(item["calib"]), loaded.inputs) if item["calib"] else xs
        ev, y = None, None
        if item["eval"]:
            ev = samples.read(Path(item["eval"]), loaded.inputs, extra=("y",))
            y = samples.labels(Path(item["eval"]), len(ev[0]))
        refs = outputs(loaded, xs, "the")
        ref_eval = outputs(loaded, ev, "the --eval") if ev is not None else []
    except sources.BadInput as e:
        return {"status": "failed", "error": BAD_INPUT + str(e)}
    except MemoryError:
        return {"status": "failed", "error": BAD_INPUT + f"{src.path}: out of memory while loading it or computing "
                "its outputs (the model or the samples are larger than this machine can hold)"}
    res = {"status": "ok", "framework": loaded.framework, "calibration": calibration, "n_samples": len(xs[0]),
           "shapes": [list(a.shape) for a in xs],
           "inputs": [[i.name, list(i.shape), i.dtype] for i in loaded.inputs], "facts": loaded.facts,
           "samples_sha": _save(inputs_dir / "samples.npz", xs), "calib_sha": _save(inputs_dir / "calib.npz", calib),
           "eval_sha": _save(inputs_dir / "eval.npz", ev) if ev is not None else "", "weights_sha": ""}
    _save(inputs_dir / "refs.npz", refs + ref_eval)
    res["n_refs"] = len(refs)
    if y is not None:
        np.save(inputs_dir / "labels.npy", y)
    if src.kind == "factory":   # the export worker loads these: one model, even from an unseeded factory
        res["weights_sha"] = sources.weights_sha256(loaded)
        sources.save_weights(loaded, inputs_dir / "weights.npz")
    return res


def prepare(src, samples_npz: Path | None, calib_npz: Path | None, eval_npz: Path | None, work: Path) -> Prepared:
    from pipeline import sandbox, workers
    from pipeline.package.sources import BadInput, TensorSpec
    inputs_dir = work / "inputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    from pipeline.package import samples
    files = [p for p in (samples_npz, calib_npz, eval_npz) if p]
    for p in files:     # bombs, pickles, NaN, no arrays: refused here in a moment, before a worker opens the model
        samples.precheck(Path(p))
    item = {"id": "prepare", "source": {"kind": src.kind, "path": str(src.path.resolve()), "function": src.function,
                                        "signature": src.signature},
            "inputs_dir": str(inputs_dir.resolve()), **{k: str(Path(p).resolve()) if p else "" for k, p in
                                                        (("samples", samples_npz), ("calib", calib_npz),
                                                         ("eval", eval_npz))}}
    reads = (src.path.resolve().parent if src.kind == "factory" else src.path, *files)
    job = workers.Job("pipeline.package.reference", (item,), timeout_s=TIMEOUT_S,
                      sandbox=sandbox.Sandbox(reads=reads, writes=(inputs_dir,)))
    r = workers.run(job)["prepare"]
    if r["status"] != "ok":
        err = r["error"]
        if err.startswith(BAD_INPUT):
            raise BadInput(err[len(BAD_INPUT):])
        raise BadInput(f"{src.text}: opening the model failed: {err}")
    with np.load(inputs_dir / "refs.npz") as z:
        outs = [z[f"in_{k}"] for k in range(len(z.files))]
    labels = np.load(inputs_dir / "labels.npy") if r["eval_sha"] else None
    return Prepared(r["framework"], [TensorSpec(n, tuple(s), d) for n, s, d in r["inputs"]], r["calibration"],
                    r["n_samples"], r["shapes"], r["samples_sha"], r["calib_sha"], r["eval_sha"], r["weights_sha"],
                    outs[:r["n_refs"]], outs[r["n_refs"]:] if r["eval_sha"] else None, labels, r["facts"])


if __name__ == "__main__":
    from pipeline import workers
    sys.exit(workers.serve(one))
