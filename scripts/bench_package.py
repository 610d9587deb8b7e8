"""Time `python -m pipeline package` on a phone-size model: MobileNetV2 (width 1.0, 224x224, 1000
classes: 3.5M parameters) from `.pt2` and from `.keras`, every export path plus the bench.

    .venv/bin/python scripts/bench_package.py [--out results/package_timing.json]

Seeded weights (the timing does not depend on them); 16 seeded samples; the default bench settings.
Writes the seconds per source kind and the bundle's choice; prints them beside the 10-minute target.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_S = 600.0


def make_sources(d: Path) -> dict[str, tuple[Path, Path]]:
    import numpy as np
    import torch

    from models import mobilenet_v2_224 as m
    torch.manual_seed(0)
    tm = m.build_torch(num_classes=1000).eval()
    params = sum(p.numel() for p in tm.parameters())
    x = np.random.default_rng(0).standard_normal((16, 3, 224, 224)).astype(np.float32)
    torch.export.save(torch.export.export(tm, (torch.from_numpy(x[:1]),)), d / "mnv2.pt2")
    np.savez(d / "samples_nchw.npz", x)
    km = m.build_keras(num_classes=1000)
    km.save(d / "mnv2.keras")
    np.savez(d / "samples_nhwc.npz", np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    print(f"[bench-package] MobileNetV2 1.0 224: {params / 1e6:.2f}M parameters (torch)", flush=True)
    return {"pt2": (d / "mnv2.pt2", d / "samples_nchw.npz"), "keras": (d / "mnv2.keras", d / "samples_nhwc.npz")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "package_timing.json")
    ap.add_argument("--kinds", default="pt2,keras")
    args = ap.parse_args()
    out = {"target_s": TARGET_S, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="mb-bench-package-") as tmp:
        d = Path(tmp)
        srcs = make_sources(d)
        for kind in [k for k in args.kinds.split(",") if k]:
            src, samples = srcs[kind]
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "pipeline", "--artifacts", str(d / "artifacts"), "--results",
                                str(d / "results"), "package", str(src), "--samples", str(samples),
                                "--out", str(d / "dist"), "--name", f"mnv2_{kind}"], cwd=ROOT,
                               capture_output=True, text=True)
            s = time.perf_counter() - t0
            chosen = [ln for ln in p.stdout.splitlines() if ln.startswith("[package] wrote")]
            out["runs"][kind] = {"seconds": round(s, 1), "exit": p.returncode, "wrote": chosen[-1] if chosen else "",
                                 "tail": p.stdout.strip().splitlines()[-3:] + p.stderr.strip().splitlines()[-3:]}
            print(f"[bench-package] {kind}: {s:.0f} s (target {TARGET_S:.0f} s), exit {p.returncode}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
