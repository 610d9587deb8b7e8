"""Shared by the two TFLite interpreters (ai-edge-litert and the old tflite-runtime): same API.

Quantized inputs are quantized with the tensor's own scale and zero point (round, then clip: never
truncate); quantized outputs are dequantized, so callers always see float32.
"""
from __future__ import annotations

import numpy as np

from pipeline.runtimes.base import Runtime


class TFLiteInterpreter(Runtime):
    """Both interpreters' adapter: a subclass names its Interpreter class, availability and version."""
    FORMATS = ("tflite",)
    TIMED_CALL = "bound inputs, inference call only"

    def interpreter_class(self):
        raise NotImplementedError

    def load(self, path, threads: int = 1):
        it = self.interpreter_class()(model_path=str(path), num_threads=int(threads))
        allocate(it, path)
        return it

    def load_without_delegates(self, path, threads: int = 1):
        """The built-in kernels only: XNNPACK, applied by default, is not (is it the delegate?)."""
        import sys
        cls = self.interpreter_class()
        off = sys.modules[cls.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        it = cls(model_path=str(path), num_threads=int(threads), experimental_op_resolver_type=off)
        allocate(it, path)
        return it

    def run(self, it, inputs: list) -> list:
        _set_inputs(it, inputs)
        it.invoke()
        return [_from_output(it.get_tensor(d["index"]), d) for d in _details(it)[1]]

    def bind(self, it, inputs: list):
        """Inputs set once, then the timed call is invoke() alone: what LiteRT's own benchmark times."""
        _set_inputs(it, inputs)
        return it.invoke

    def resize(self, it, shapes: list, name: str = "model") -> None:
        """Give dynamic dimensions (shape_signature -1) their sizes; the static ones must match."""
        ins = it.get_input_details()
        if len(shapes) != len(ins):
            raise ValueError(f"{name}: {len(shapes)} --shape given but the model takes {len(ins)} inputs "
                             f"({', '.join(d['name'] for d in ins)})")
        for shape, d in zip(shapes, ins):
            sig = [int(s) for s in d.get("shape_signature", d["shape"])]
            fits = len(shape) == len(sig) and all(s == -1 or s == int(g) for s, g in zip(sig, shape))
            if not fits:
                raise ValueError(f"{name}: --shape {','.join(map(str, shape))} does not fit input {d['name']!r} "
                                 f"with signature {sig} (-1 = dynamic)")
            if list(shape) != [int(s) for s in d["shape"]]:
                it.resize_tensor_input(d["index"], [int(s) for s in shape], strict=True)
        allocate(it, name)
        it._mb_details = None

    def describe(self, it) -> dict:
        ops = it._get_ops_details()
        inside = delegated_nodes(ops)
        original = [o for o in ops if o["op_name"] != "DELEGATE"]
        return {"inputs": [_spec(d) for d in it.get_input_details()],
                "outputs": [_spec(d) for d in it.get_output_details()],
                "ops": sorted({o["op_name"] for o in original}),
                "op_count": len(original),
                "delegated_ops": len(inside),
                "non_delegated_ops": len(original) - len(inside),
                "not_delegated": sorted({o["op_name"] for o in original if o["index"] not in inside}),
                "delegates": sum(o["op_name"] == "DELEGATE" for o in ops)}


def _tensor_bytes(d: dict) -> int:
    return int(np.prod([max(int(n), 1) for n in d["shape"]], dtype=np.int64)) * np.dtype(d["dtype"]).itemsize


def allocate(it, path) -> None:
    """allocate_tensors, after checking each tensor against the process's memory ceiling (RLIMIT_AS, set
    by the device profile): a model that declares a 3 GiB input fails here with one line naming the
    tensor, before any allocation. LiteRT's own failure has no message: say what it was allocating."""
    import resource
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    details = it.get_tensor_details()
    big = max(details, key=_tensor_bytes, default=None)
    if big is not None and limit != resource.RLIM_INFINITY and _tensor_bytes(big) > limit:
        raise MemoryError(f"{path}: tensor {big['name']!r} {list(big['shape'])} {np.dtype(big['dtype']).name} "
                          f"needs {_tensor_bytes(big) / 2**20:.0f} MiB, over this profile's memory ceiling of "
                          f"{limit / 2**20:.0f} MiB")
    try:
        it.allocate_tensors()
    except RuntimeError as e:
        if str(e).strip():
            raise
        total = sum(_tensor_bytes(d) for d in details)
        raise RuntimeError(f"{path}: allocate_tensors failed (no message from the runtime) allocating "
                           f"{len(details)} tensors of {total / 2**20:.0f} MiB in all, the largest "
                           f"{big['name']!r} {list(big['shape'])} ({_tensor_bytes(big) / 2**20:.0f} MiB)") from None


def _details(it) -> tuple[list, list]:
    # get_*_details() builds fresh dicts per call (~18 us): looked up once, or the harness would time it
    d = getattr(it, "_mb_details", None)
    if d is None:
        d = it._mb_details = (it.get_input_details(), it.get_output_details())
    return d


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def _to_input(x: np.ndarray, d: dict) -> np.ndarray:
    dtype = d["dtype"]
    scale, zp = d["quantization"]
    if np.issubdtype(dtype, np.integer) and x.dtype != dtype:
        if scale == 0:
            return x.astype(dtype)
        return quantize(x, dtype, scale, zp)
    return x.astype(dtype, copy=False)


def _from_output(y: np.ndarray, d: dict) -> np.ndarray:
    scale, zp = d["quantization"]
    if np.issubdtype(y.dtype, np.integer) and scale != 0:
        return (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32, copy=False)


def _set_inputs(it, inputs: list) -> None:
    ins = _details(it)[0]
    if len(inputs) != len(ins):
        raise ValueError(f"model takes {len(ins)} inputs, got {len(inputs)}")
    resized = False
    for x, d in zip(inputs, ins):
        if tuple(x.shape) != tuple(d["shape"]):
            # a dimension the model declares dynamic (-1 in shape_signature) may take any size
            sig = tuple(d.get("shape_signature", d["shape"]))
            if len(sig) != x.ndim or any(s != -1 and s != n for s, n in zip(sig, x.shape)):
                raise ValueError(f"input {d['name']!r}: shape {tuple(x.shape)} does not fit the model's "
                                 f"{tuple(sig)}")
            it.resize_tensor_input(d["index"], list(x.shape))
            resized = True
    if resized:
        it.allocate_tensors()
        ins = it.get_input_details()
    for x, d in zip(inputs, ins):
        it.set_tensor(d["index"], _to_input(x, d))


def _spec(d: dict) -> dict:
    scale, zp = d["quantization"]
    return {"name": d["name"], "shape": [int(s) for s in d["shape"]],
            "shape_signature": [int(s) for s in d.get("shape_signature", d["shape"])],
            "dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}


def delegated_nodes(ops: list[dict]) -> set[int]:
    """Original nodes absorbed by a DELEGATE node: walk back from its outputs to its inputs."""
    producer = {}
    for o in ops:
        if o["op_name"] != "DELEGATE":
            for t in o["outputs"]:
                producer[int(t)] = o
    inside: set[int] = set()
    for d in (o for o in ops if o["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        while stack:
            t = stack.pop()
            n = producer.get(t)
            if t in boundary or n is None or n["index"] in inside:
                continue
            inside.add(n["index"])
            stack.extend(int(i) for i in n["inputs"])
    return inside
