"""Hostile model and sample files, crafted in the test from real ones (nothing binary is committed).
Every payload would create `marker` if it ran: a test asserts the marker does not exist.

    pt2_variant(real_pt2, out, "weights_pickle", marker)     # one of PT2_CASES
    savedmodel_with_write(out, marker)                       # a Keras-free SavedModel calling tf.io.write_file
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path


class Payload:
    """Unpickling it runs `open(marker, "w")` (what a real attack would replace with anything)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def torch_saved(marker: Path) -> bytes:
    """A torch.save zip whose data.pkl holds the payload (what torch.load(weights_only=False) runs)."""
    import torch
    buf = io.BytesIO()
    torch.save(Payload(marker), buf)
    return buf.getvalue()


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy a zip entry by entry; edit(rel_name, data) -> data, or None to drop it; returns extra entries."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        root = z.namelist()[0].split("/", 1)[0] + "/"
        extra = {}
        for info in z.infolist():
            rel = info.filename[len(root):]
            data = edit(rel, z.read(info.filename), extra)
            if data is not None:
                out.writestr(info, data)
        for rel, data in extra.items():
            out.writestr(root + rel, data)


def _first_node(model: dict) -> dict:
    return model["graph_module"]["graph"]["nodes"][0]


PT2_CASES = ("weights_pickle", "constants_pickle", "sample_inputs_pickle", "custom_obj", "opaque_obj",
             "expr_eval", "guards_exec", "target_call", "aotinductor", "legacy_layout", "fqn_inject",
             "size_bomb", "deflated")


def pt2_variant(src: Path, dst: Path, case: str, marker: Path) -> Path:
    """`src` (a real torch.export.save archive) with one hostile change."""
    code = f"open({str(marker)!r}, 'w')"

    def edit(rel: str, data: bytes, extra: dict):
        if case == "weights_pickle" and rel == "data/weights/model_weights_config.json":
            cfg = json.loads(data)
            cfg["config"][next(iter(cfg["config"]))].update(use_pickle=True, path_name="weight_99")
            extra["data/weights/weight_99"] = torch_saved(marker)
            return json.dumps(cfg).encode()
        if case == "constants_pickle" and rel == "data/constants/model_constants_config.json":
            cfg = json.loads(data)
            cfg["config"]["evil"] = {"path_name": "tensor_99", "is_param": False, "use_pickle": True,
                                     "tensor_meta": None}
            extra["data/constants/tensor_99"] = torch_saved(marker)
            return json.dumps(cfg).encode()
        if case == "sample_inputs_pickle" and rel == "data/sample_inputs/model.pt":
            return torch_saved(marker)
        if case in ("custom_obj", "opaque_obj") and rel == "data/constants/model_constants_config.json":
            cfg = json.loads(data)
            name = f"{case}_0"
            cfg["config"]["evil"] = {"path_name": name, "is_param": False, "use_pickle": True, "tensor_meta": None}
            extra[f"data/constants/{name}"] = pickled(marker)
            return json.dumps(cfg).encode()
        if rel == "models/model.json" and case in ("expr_eval", "guards_exec", "target_call", "fqn_inject"):
            m = json.loads(data)
            if case == "expr_eval":   # a tensor's size as a symbolic expression: sympy.sympify evals it
                tv = m["graph_module"]["graph"]["tensor_values"]
                name = next(iter(tv))
                tv[name]["sizes"][0] = {"as_expr": {"expr_str": code, "hint": {"as_int": 1}}}
            elif case == "guards_exec":
                m["guards_code"] = [f"{code} is None"]
            elif case == "target_call":   # resolves by getattr from torch: torch.os.system
                node = _first_node(m)
                node["target"] = "torch.os.system"
                node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]
            else:
                spec = m["graph_module"]["signature"]["input_specs"][0]
                key = next(iter(spec))
                spec[key][key + "_name"] = f'w"), {code}, getattr(self, "w'
            return json.dumps(m).encode()
        if case == "aotinductor" and rel == "archive_format":
            extra["data/aotinductor/model/model.so"] = b"\x7fELF" + b"\0" * 60
        if case == "legacy_layout" and rel == "archive_format":
            return None
        if case == "legacy_layout" and rel == "archive_version":
            extra["serialized_state_dict.pt"] = torch_saved(marker)
        if case == "size_bomb" and rel == "data/weights/model_weights_config.json":
            cfg = json.loads(data)
            fqn = next(iter(cfg["config"]))
            tm = cfg["config"][fqn]["tensor_meta"]
            tm["sizes"] = [{"as_int": 2**20}, {"as_int": 2**20}]
            tm["strides"] = [{"as_int": 2**20}, {"as_int": 1}]
            extra["data/weights/" + cfg["config"][fqn]["path_name"]] = b""
            return json.dumps(cfg).encode()
        if case == "size_bomb" and rel.startswith("data/weights/weight_"):
            return data if rel != "data/weights/weight_0" else None
        return data

    if case == "deflated":
        with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
            for info in z.infolist():
                out.writestr(info.filename, z.read(info.filename))
        return dst
    _rewrite(src, dst, edit)
    return dst


def savedmodel_with_write(out: Path, marker: Path, op: str = "write") -> Path:
    """A SavedModel whose serving signature writes (or reads) a file: the graph is a program."""
    import tensorflow as tf

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            if op == "write":
                tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(x)))
            elif op == "read":
                x = x + tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32) * 0.0
            elif op == "print":
                tf.print(x, output_stream=f"file://{marker}")
            elif op == "pyfunc":
                x = tf.numpy_function(lambda a: a, [x], tf.float32)
            return {"y": x * 2.0}

    m = Writer()
    tf.saved_model.save(m, str(out), signatures={"serving_default": m.serve})
    return out
