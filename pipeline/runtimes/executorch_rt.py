"""ExecuTorch runtime (the Python bindings of the C++ runtime, with XNNPACK registered)."""
from __future__ import annotations

import numpy as np

from pipeline.runtimes.base import Runtime

# ScalarType codes of ExecuTorch's TensorInfo.dtype()
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
           7: "float64", 11: "bool"}


def bindings():
    """(portable_lib, executorch.runtime.Runtime): the runtime's Python bindings without the exporter.
    `portable_lib` imports `executorch.exir._warnings`, and importing a submodule runs its package's
    `__init__`: all of `executorch.exir` (the exporter, torchao), ~10 s of a worker's start for a runtime
    that needs none of it (2.4 s without, torch included; measured 2026-12-08). So while the bindings
    import, `executorch.exir` is a bare package (its folder, no `__init__` run); then it is dropped from
    `sys.modules`, and a later `import executorch.exir` (ETDump's Inspector) gets the real one."""
    import importlib.util
    import sys
    import types
    if "executorch.runtime" in sys.modules:   # imported already (every load after the first)
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as ETRuntime
        return portable_lib, ETRuntime
    bare = None
    if "executorch.exir" not in sys.modules:
        spec = importlib.util.find_spec("executorch.exir")
        bare = types.ModuleType("executorch.exir")
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules["executorch.exir"] = bare
    try:
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime as ETRuntime
    finally:
        if bare is not None and sys.modules.get("executorch.exir") is bare:
            del sys.modules["executorch.exir"]
            import executorch
            if getattr(executorch, "exir", None) is bare:
                del executorch.exir
    return portable_lib, ETRuntime


class ExecuTorch(Runtime):
    FORMATS = ("pte",)
    MODULE = "executorch.runtime"
    INSTALL_HINT = "pip install executorch==1.5.1 (make setup)"
    TIMED_CALL = "bound inputs, inference call only"

    def import_runtime(self) -> None:
        bindings()

    def load(self, path, threads: int = 1):
        portable_lib, ETRuntime = bindings()
        portable_lib._unsafe_reset_threadpool(int(threads))
        program = ETRuntime.get().load_program(str(path))
        if "forward" not in program.method_names:
            raise ValueError(f"{path}: program has no 'forward' method (has {sorted(program.method_names)})")
        try:
            return program.load_method("forward")
        except RuntimeError as e:
            missing = _unregistered_backends(path, portable_lib)
            if not missing:
                raise
            # the runtime logs the cause to stderr only ("Backend X is not registered"); say it in the error
            raise RuntimeError(f"Backend {', '.join(missing)} is not registered in this ExecuTorch runtime (it "
                               f"registers {', '.join(portable_lib._get_registered_backend_names())}): {e}") from None

    def bind(self, method, inputs: list):
        """Inputs converted once; the timed call is execute() alone."""
        tensors = _tensors(method, inputs)
        return lambda: method.execute(tensors)

    def run(self, method, inputs: list) -> list:
        return [o.detach().float().numpy() if hasattr(o, "numpy") else np.asarray(o, np.float32)
                for o in method.execute(_tensors(method, inputs))]

    def describe(self, method) -> dict:
        meta = method.metadata
        return {"inputs": [_spec(meta.input_tensor_meta(i), f"input_{i}") for i in range(meta.num_inputs())],
                "outputs": [_spec(meta.output_tensor_meta(i), f"output_{i}") for i in range(meta.num_outputs())]}

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("executorch")


def _tensors(method, inputs: list) -> list:
    import torch
    meta = method.metadata
    if len(inputs) != meta.num_inputs():
        raise ValueError(f"model takes {meta.num_inputs()} inputs, got {len(inputs)}")
    tensors = []
    for i, x in enumerate(inputs):
        info = meta.input_tensor_meta(i)
        # sizes() of a dynamic input is its upper bound: smaller sizes are the runtime's to accept or refuse
        if x.ndim != len(info.sizes()) or any(n > s for n, s in zip(x.shape, info.sizes())):
            raise ValueError(f"input {i}: shape {tuple(x.shape)} does not fit the model's {tuple(info.sizes())}")
        tensors.append(torch.from_numpy(np.ascontiguousarray(x, dtype=_DTYPES.get(info.dtype(), x.dtype))))
    return tensors


def _spec(info, name: str) -> dict:
    return {"name": name, "shape": [int(s) for s in info.sizes()], "dtype": _DTYPES.get(info.dtype(), str(info.dtype()))}


ADAPTER = ExecuTorch()


def _unregistered_backends(path, portable_lib) -> list[str]:
    from pipeline.filecheck.flatbuf import pte_program
    with open(path, "rb") as f:
        wanted = {d["id"] for m in pte_program(f.read()) for d in m["delegates"]}
    return sorted(wanted - set(portable_lib._get_registered_backend_names()))
