"""Core AI's own runtime (coreai-core's Linux CPU runtime): runs `.aimodel` folders on this host.

What it times: Core AI's CPU runtime on this x86 Linux host, not an iPhone's GPU or Neural Engine
(Linux has no compute-unit choice: `SpecializationOptions` is macOS-only). Its API is async
(`async with asset.executable() as m`, `await m.load_function("main")({...})`): each handle owns a
private event loop, entered at `load` and run to completion per call.

Load = compile: the first `executable()` lowers the program to a temporary `.aimodelx` folder (ODIX
binary) in the process's temp dir, and that compile is part of `load_ms` (an app pays its own device
specialization at first load, cached afterwards). In the pipeline the temp dir is the run's scratch
folder (`fsutil.scratch`: `$TMPDIR`), so a killed worker leaves it where the run (or the next one)
removes it; a handle that is released closes its context, which removes the folder at once.
fp16 models take float16 inputs: `run`/`bind` convert float32 inputs to the input's dtype, and
outputs come back as float32 (describe says so). The runtime takes no thread count: the profile's
CPU affinity bounds it.
"""
from __future__ import annotations

import asyncio
import weakref

import numpy as np

from pipeline.runtimes.base import Runtime

FUNCTION = "main"
_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int16": np.int16,
           "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}


def _close(loop: asyncio.AbstractEventLoop, cm) -> None:
    """Leave the executable's context (removes its temporary .aimodelx), then the loop."""
    try:
        if not loop.is_closed():
            loop.run_until_complete(cm.__aexit__(None, None, None))
    finally:
        if not loop.is_closed():
            loop.close()


class Handle:
    """A loaded Core AI model: its event loop, the executable's open context, the loaded function, and
    the input/output specs its descriptor gives."""

    def __init__(self, path, function: str = FUNCTION):
        from coreai.authoring import AIModelAsset
        self.loop = asyncio.new_event_loop()
        cm = AIModelAsset.load(str(path)).executable()
        self._closer = weakref.finalize(self, _close, self.loop, cm)   # on release, and at exit
        try:
            self.model = self.loop.run_until_complete(cm.__aenter__())
            names = list(self.model.function_names)
            if function not in names:
                if len(names) != 1:
                    raise ValueError(f"{path}: no function {function!r} (functions: {', '.join(names) or 'none'})")
                function = names[0]
            self.function = function
            self.fn = self.model.load_function(function)
        except BaseException:
            self.close()
            raise
        d = self.fn.desc
        self.inputs = [_spec(n, d.input_descriptor(n)) for n in d.input_names]
        self.outputs = [_spec(n, d.output_descriptor(n)) for n in d.output_names]

    def close(self) -> None:
        self._closer()

    def feed(self, inputs: list) -> dict:
        """NDArrays for the inputs, each in its input's dtype (float32 -> float16 for an fp16 model)."""
        from coreai.runtime import NDArray
        if len(inputs) != len(self.inputs):
            raise ValueError(f"model takes {len(self.inputs)} inputs, got {len(inputs)}")
        feed = {}
        for x, s in zip(inputs, self.inputs):
            if list(x.shape) != s["shape"] and -1 not in s["shape"]:
                raise ValueError(f"input {s['name']!r}: shape {tuple(x.shape)} does not fit the model's "
                                 f"{tuple(s['shape'])}")
            feed[s["name"]] = NDArray(np.ascontiguousarray(x, dtype=_DTYPES.get(s["dtype"], x.dtype)))
        return feed

    def call(self, feed: dict) -> dict:
        return self.loop.run_until_complete(self.fn(feed))


def _spec(name: str, desc) -> dict:
    return {"name": name, "shape": [-1 if d is None else int(d) for d in desc.shape], "dtype": str(desc.dtype)}


class CoreAI(Runtime):
    FORMATS = ("aimodel",)
    MODULE = "coreai.runtime"
    INSTALL_HINT = "pip install coreai-core==1.0.0b3 (make setup)"
    TIMED_CALL = "bound inputs (NDArray, in the model's dtype), the awaited inference call on the handle's loop"

    def load(self, path, threads: int = 1) -> Handle:
        return Handle(path)

    def bind(self, handle: Handle, inputs: list):
        feed = handle.feed(inputs)
        return lambda: handle.call(feed)

    def run(self, handle: Handle, inputs: list) -> list:
        out = handle.call(handle.feed(inputs))
        return [np.asarray(out[s["name"]].numpy(), np.float32) for s in handle.outputs]

    def describe(self, handle: Handle) -> dict:
        converted = [s["name"] for s in handle.inputs if s["dtype"] == "float16"]
        return {"inputs": handle.inputs, "outputs": handle.outputs, "function": handle.function,
                "compute": "Core AI's CPU runtime on this Linux host (not an iPhone's GPU or Neural Engine)",
                "load_includes": "compiling the program to a temporary .aimodelx folder (Core AI's first "
                                 "executable() on Linux), removed when the handle is released",
                **({"input_conversion": f"float32 -> float16 by the adapter for {', '.join(converted)} (the "
                                        "model takes float16); outputs read back as float32"} if converted else {}),
                "threads": "not settable on Linux: bounded by the profile's CPU affinity"}

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("coreai-core")


ADAPTER = CoreAI()
