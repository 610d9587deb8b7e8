"""Export worker for the operator probes: build each probe in one framework, save its reference
outputs, run the requested export paths. Started by `probes/harness.py` through `pipeline/workers.py`:

    python -m probes.export_worker JOB.json

Items: {"id", "probe", "path"} with path "" = reference outputs only. Items of one probe are
adjacent, so each model is built once. The path functions are the registry's own (`export.run.export_to`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import probes  # noqa: E402
from export import registry  # noqa: E402
from export.run import export_to  # noqa: E402
from pipeline import fsutil, workers  # noqa: E402
from pipeline.artifact import FRAMEWORK_OF_SOURCE, ArtifactId  # noqa: E402
from pipeline.schema import first_line  # noqa: E402


def reference(probe: probes.Probe, source: str, model) -> dict[str, np.ndarray]:
    """Inputs (in the source's layout) and the framework's own outputs, for every input set."""
    arrays = {}
    for s, inputs in enumerate(probe.input_sets()):
        xs = inputs if source == "torch" else probe.to_keras(inputs)
        if source == "torch":
            import torch
            with torch.no_grad():
                out = model(*[torch.from_numpy(x) for x in xs])
            outs = [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]
        else:
            out = model(xs, training=False)
            outs = [np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else [out])]
        for k, x in enumerate(xs):
            arrays[f"in_{s}_{k}"] = x
        for k, o in enumerate(outs):
            arrays[f"out_{s}_{k}"] = o
    return arrays


def main() -> int:
    built: dict[str, object] = {}   # the probe built last: items of one probe are adjacent

    def one(item: dict, params: dict) -> dict:
        source, out_dir = params["source"], Path(params["out_dir"])
        probe = probes.get(item["probe"])
        folder = out_dir / probe.name
        if probe.name not in built:
            built.clear()
            try:
                built[probe.name] = probe.build_torch() if source == "torch" else probe.build_keras()
            except Exception as e:  # noqa: BLE001 - a probe the framework cannot even build is a finding
                return {"status": "failed", "error": f"building the {source} model: {first_line(e)}"}
        model = built[probe.name]
        if not item["path"]:
            try:
                fsutil.save_npz(folder / f"{source}.ref.npz", **reference(probe, source, model))
                return {"status": "ok"}
            except Exception as e:  # noqa: BLE001
                return {"status": "failed", "error": f"{source} reference run: {first_line(e)}"}
        p = registry.get(item["path"])
        example = probe.input_sets()[0]
        calib = probe.calib()
        if source != "torch":
            example, calib = probe.to_keras(example), probe.to_keras(calib)
        spec = probes.ProbeSpec(probe.name, "nhwc" if probe.nhwc and source != "torch" else "same")
        art = ArtifactId(probe.name, source, p.name).file(out_dir, p.format)
        ctx = registry.ExportContext(spec, source, model, tuple(example), tuple(calib), art, folder,
                                     dynamic_shapes=probe.dynamic() if probe.dynamic and source == "torch" else None)
        base = dict(kind="probe", model=f"probe_{probe.name}", source=source, path=p.name, format=p.format,
                    framework=FRAMEWORK_OF_SOURCE[source], quantization=p.quantization)
        rec = export_to(p, ctx, base)
        rec.info["probe"] = probe.name
        return {"status": "ok", "record": json.loads(rec.to_json())}
    return workers.serve(one)


if __name__ == "__main__":
    sys.exit(main())
