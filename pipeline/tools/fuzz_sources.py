"""Fuzz the `package` sources: mutants of a real `.pt2` and a real SavedModel, fed along the path a user's
model takes (the pre-check here, then `sources.load` and one run in a sandboxed worker).

    python -m pipeline.tools.fuzz_sources --per-kind 300          # `make fuzz` runs it through pytest

Seeds: the digits_cnn twins, exported here (torch.export.save, Keras model.export). Mutants: half random
byte mutations (`fuzz.mutate`), half structure-aware lies a hostile file would tell: for a .pt2, JSON
values replaced in models/model.json and the weight/constant configs (use_pickle, targets such as
torch.os.system, expr_str / guards that are Python, huge sizes, renamed or dropped entries, pickles
added); for a SavedModel, a node's op replaced by a side-effecting one (WriteFile, ReadFile, PyFunc,
PrintV2, ...) or any registered op, attributes dropped, bytes of saved_model.pb or the variables
mutated. Every payload would create a marker file if it ran: the run fails if one exists (0 code or
file-op executions). Outcomes as in `pipeline/tools/fuzz.py`.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

from pipeline import fsutil, sandbox, workers
from pipeline.tools import fuzz

HOSTILE_TARGETS = ("torch.os.system", "builtins.eval", "torch.ops.aten.from_file.default", "torch.load",
                   "torch.hub.load", "torch.ops.aten._print.default", "#evil:op", "math.factorial")
HOSTILE_TF_OPS = ("WriteFile", "ReadFile", "PyFunc", "EagerPyFunc", "PyFuncStateless", "PrintV2", "MatchingFiles",
                  "SaveV2", "RestoreV2", "ImmutableConst", "TFRecordDataset", "DebugIdentityV2", "RemoteCall",
                  "DeleteFile", "DecodeProtoV2", "InitializeTableFromTextFileV2")


def seeds(out: Path) -> dict[str, Path]:
    """The digits_cnn twins as a .pt2 and a SavedModel (untrained: the loaders, not the weights, are fuzzed)."""
    import keras
    import torch

    import models
    spec = models.get("digits_cnn")
    torch.manual_seed(0)
    net = spec.build_torch().eval()
    pt2 = out / "seed.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, *spec.input_shape),)), pt2)
    keras.utils.set_random_seed(0)
    spec.build_keras().export(str(out / "seed_sm"), verbose=False)
    return {"pt2": pt2, "savedmodel": out / "seed_sm"}


class Payload:
    """Unpickling it writes the marker (a stand-in for any code)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload_value(rng: random.Random, marker: Path):
    code = f"open({str(marker)!r}, 'w')"
    return rng.choice((True, code, f"{code} is None", 2**62, -1, "", None, [], {"as_expr": {"expr_str": code}},
                       "../../../etc/passwd", "torch.os.system", "w\"), " + code + ", getattr(self, \"w"))


def _mutate_json(obj, rng: random.Random, marker: Path) -> str:
    """Replace one value (or one key's value) somewhere in a JSON tree; returns what it did."""
    paths = []

    def walk(o, path):
        if isinstance(o, dict):
            for k, v in o.items():
                paths.append((o, k, path + [k]))
                walk(v, path + [k])
        elif isinstance(o, list):
            for i, v in enumerate(o):
                paths.append((o, i, path + [i]))
                walk(v, path + [i])
    walk(obj, [])
    if not paths:
        return "empty"
    parent, key, path = rng.choice(paths)
    if key == "target" or rng.random() < 0.15:
        parent[key] = rng.choice(HOSTILE_TARGETS) if key == "target" else _payload_value(rng, marker)
    elif key == "use_pickle":
        parent[key] = True
    elif key in ("expr_str", "guards_code"):
        parent[key] = f"open({str(marker)!r}, 'w')" if key == "expr_str" else [f"open({str(marker)!r}, 'w')"]
    else:
        parent[key] = _payload_value(rng, marker)
    return f"json {'/'.join(map(str, path))[:80]}"


def mutate_pt2(data: bytes, rng: random.Random, marker: Path, work: Path) -> tuple[bytes, str]:
    src = work / "in.pt2"
    src.write_bytes(data)
    out = work / "out.pt2"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w") as w:
        infos = z.infolist()
        jsons = [i for i in infos if i.filename.endswith(".json")]
        pick = rng.choice(jsons) if jsons else None
        how = "unchanged"
        action = rng.choice(("json", "json", "json", "drop", "pickle", "rename"))
        for info in infos:
            body = z.read(info.filename)
            if action == "json" and info is pick:
                try:
                    obj = json.loads(body)
                    how = _mutate_json(obj, rng, marker)
                    body = json.dumps(obj).encode()
                except ValueError:
                    pass
            elif action == "drop" and info is pick:
                how = f"drop {info.filename}"
                continue
            elif action == "rename" and info is pick:
                how = f"rename {info.filename}"
                info.filename = info.filename.rsplit("/", 1)[0] + "/../evil.json"
            w.writestr(info, body)
        if action == "pickle":
            import pickle
            root = infos[0].filename.split("/", 1)[0]
            name = rng.choice(("data/weights/weight_0", "data/sample_inputs/model.pt", "data/constants/opaque_obj_0",
                               "serialized_state_dict.pt", "data/aotinductor/model/x.so"))
            w.writestr(f"{root}/{name}_x" if rng.random() < 0.5 else f"{root}/{name}", pickle.dumps(Payload(marker)))
            how = f"pickle at {name}"
    return out.read_bytes(), how


def mutate_savedmodel(seed: Path, dst: Path, rng: random.Random, ops: list[str]) -> str:
    shutil.copytree(seed, dst)
    pb = dst / "saved_model.pb"
    kind = rng.choice(("op", "op", "op", "attr", "bytes", "variables"))
    if kind == "bytes":
        data, how = fuzz.mutate(pb.read_bytes(), pb.read_bytes(), rng)
        pb.write_bytes(data)
        return f"saved_model.pb {how}"
    if kind == "variables":
        v = sorted((dst / "variables").glob("*"))
        f = rng.choice(v)
        data, how = fuzz.mutate(f.read_bytes(), f.read_bytes(), rng)
        f.write_bytes(data)
        return f"{f.name} {how}"
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    mg = sm.meta_graphs[0]
    nodes = list(mg.graph_def.node) + [n for f in mg.graph_def.library.function for n in f.node_def]
    node = rng.choice(nodes)
    if kind == "attr" and node.attr:
        key = rng.choice(sorted(node.attr))
        del node.attr[key]
        how = f"drop attr {key} of {node.op}"
    else:
        new = rng.choice(HOSTILE_TF_OPS) if rng.random() < 0.6 else rng.choice(ops)
        how = f"op {node.op} -> {new}"
        node.op = new
    pb.write_bytes(sm.SerializeToString())
    return how


def _registered_ops() -> list[str]:
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api
    lst = op_def_pb2.OpList()
    lst.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return sorted(o.name for o in lst.op)


def fuzz_kind(kind: str, seed: Path, n: int, work: Path, seed_no: int = 0, log=print) -> fuzz.Tally:
    """`n` mutants of one seed: pre-check here, survivors loaded and run once in a sandboxed worker."""
    from pipeline.filecheck import pt2, savedmodel
    from pipeline.filecheck.validate import BadModelFile
    t0 = time.perf_counter()
    rng = random.Random(seed_no)
    tally = fuzz.Tally(kind)
    mdir = work / f"mutants-{kind}"
    mdir.mkdir(parents=True, exist_ok=True)
    markers = mdir / "markers"
    markers.mkdir()
    ops = _registered_ops() if kind == "savedmodel" else []
    survivors, hows, worst, errors = [], {}, {}, {}
    for i in range(n):
        marker = markers / f"PWNED-{i}"
        path = mdir / (f"m{i:05d}.pt2" if kind == "pt2" else f"m{i:05d}")
        if kind == "pt2":
            data = seed.read_bytes()
            data, how = (mutate_pt2(data, rng, marker, mdir) if rng.random() < 0.5
                         else fuzz.mutate(data, data, rng))
            path.write_bytes(data)
        else:
            how = mutate_savedmodel(seed, path, rng, ops)
        hows[i] = how
        tally.tried += 1
        try:
            (pt2.check if kind == "pt2" else savedmodel.check)(path)
            survivors.append((i, path))
        except BadModelFile as e:
            ok = fuzz.is_clear(f"BadModelFile: {e}", path) and str(e).startswith(str(path))
            worst[i], errors[i] = ("rejected_by_validator" if ok else "unclear_error"), f"{how}: {e}"
        except Exception as e:  # noqa: BLE001 - the harness must survive anything a file does
            worst[i], errors[i] = "harness_crashed", f"{how}: {type(e).__name__}: {e}"
    per = tally.per_runtime.setdefault("sources.load", Counter())
    if survivors:
        items = tuple({"id": i, "source": {"kind": kind, "path": str(p)}} for i, p in survivors)
        res = workers.run(workers.Job("pipeline.tools.fuzz_worker", items, timeout_s=60, first_timeout_s=300,
                                      # the markers writable: a payload that ran inside must show
                                      sandbox=sandbox.Sandbox(reads=(mdir,), writes=(markers,))))
        for i, p in survivors:
            r = res[i]
            death = r.get("death")
            if death == "startup":
                raise RuntimeError(f"the fuzz worker died before its first item: {r['error']}")
            out = ("worker_hung_killed" if death == "hang" else "worker_crashed_caught" if death
                   else "loaded" if r["status"] == "ok"
                   else "rejected_by_runtime" if fuzz.is_clear(r.get("error", ""), p) else "unclear_error")
            per[out] += 1
            worst[i], errors[i] = out, f"{hows[i]}: {r.get('error', '')}"
    ran = sorted(m.name for m in markers.iterdir())
    for i in range(n):
        if f"PWNED-{i}" in ran:      # a payload ran: the worst outcome of all
            worst[i], errors[i] = "harness_crashed", f"{hows[i]}: A PAYLOAD RAN (marker written)"
        tally.outcomes[worst[i]] += 1
        tally.examples.setdefault(worst[i], errors[i][:300])
    tally.seconds = time.perf_counter() - t0
    log(f"[fuzz] {kind}: {json.dumps({k: v for k, v in tally.summary().items() if k != 'examples'})}")
    return tally


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=300)
    ap.add_argument("--kinds", default="pt2,savedmodel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = ap.parse_args(argv)
    summary = []
    with tempfile.TemporaryDirectory(prefix="mb-fuzz-src-") as tmp:
        s = seeds(Path(tmp))
        for kind in [k for k in args.kinds.split(",") if k]:
            summary.append(fuzz_kind(kind, s[kind], args.per_kind, Path(tmp), args.seed).summary())
    if args.out:
        fsutil.write_json_atomic(args.out, {"kinds": summary})
    return 1 if sum(s["harness_crashed"] + s["unclear_error"] for s in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
