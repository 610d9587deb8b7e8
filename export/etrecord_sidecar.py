"""ETRecord sidecar for an ExecuTorch artifact, made apart from the normal export (which stays fast).

    .venv/bin/python -m export.etrecord_sidecar --model digits_cnn [--paths et_xnnpack_fp32,et_portable_fp32]
    # -> artifacts/digits_cnn/torch__et_xnnpack_fp32.etrecord next to the .pte

Re-lowers the trained PyTorch model exactly as `export/executorch_paths.py` does, with
`to_edge_transform_and_lower(..., generate_etrecord=True)`, and keeps the ETRecord only when the
re-lowered program is byte-identical to the benchmarked .pte (else its debug handles would not
match the ETDump). `pipeline/bench/opprofile.py` then gives Inspector the sidecar, which adds the aten op
types of each runtime event to the operator profile.
"""
from __future__ import annotations

import argparse
from pathlib import Path

PATHS = ("et_portable_fp32", "et_xnnpack_fp32")


def sidecar_for(pte: Path) -> Path:
    return Path(pte).with_suffix(".etrecord")


def make(model: str, artifacts: Path, path: str) -> Path:
    import torch
    from executorch.exir import to_edge_transform_and_lower

    import models
    from export.executorch_paths import _export
    from pipeline.artifact import ArtifactId
    from pipeline.train import load_eval, load_torch
    if path not in PATHS:
        raise ValueError(f"ETRecord sidecars are made for {PATHS}, not {path!r}")
    spec = models.get(model)
    pte = ArtifactId(model, "torch", path).file(Path(artifacts), "pte")
    if not pte.exists():
        raise FileNotFoundError(f"{pte}: export it first (python -m pipeline export --models {model})")
    torch.manual_seed(0)
    ep = _export(load_torch(spec, Path(artifacts)), load_eval(spec, Path(artifacts))["x"][:1])
    partitioners = []
    if path == "et_xnnpack_fp32":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        partitioners = [XnnpackPartitioner()]
    prog = to_edge_transform_and_lower(ep, partitioner=partitioners, generate_etrecord=True).to_executorch()
    if prog.buffer != pte.read_bytes():
        raise ValueError(f"{pte}: re-lowered program differs from the artifact; ETRecord would not match")
    dest = sidecar_for(pte)
    tmp = dest.with_name(dest.name + ".tmp")
    prog.get_etrecord().save(str(tmp))
    tmp.replace(dest)
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.etrecord_sidecar")
    ap.add_argument("--model", required=True)
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--paths", default=",".join(PATHS))
    args = ap.parse_args(argv)
    rc = 0
    for p in (x for x in args.paths.split(",") if x):
        try:
            print(make(args.model, args.artifacts, p))
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {args.model}/{p}: {str(e).splitlines()[0]}")
            rc = 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
