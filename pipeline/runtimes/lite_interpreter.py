"""PyTorch's lite interpreter for TorchScript-mobile `.ptl` (deprecated upstream for ExecuTorch).

A `.ptl` carries no input shapes: callers give them (our artifacts: the eval data; a user's file:
`--shape`).
"""
from __future__ import annotations

import numpy as np

from pipeline.runtimes.base import Runtime


class LiteInterpreter(Runtime):
    FORMATS = ("ptl",)
    MODULE = "torch"
    INSTALL_HINT = "pip install torch==2.13.0 (make setup)"
    TIMED_CALL = "bound inputs, inference call only"

    def load(self, path, threads: int = 1):
        import torch
        from torch.jit.mobile import _load_for_lite_interpreter
        torch.set_num_threads(int(threads))
        return _load_for_lite_interpreter(str(path))

    def run(self, module, inputs: list) -> list:
        import torch
        with torch.no_grad():
            try:
                out = module(*[torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])
            except RuntimeError as e:
                raise RuntimeError(_cause(e)) from None
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().float().numpy() for o in outs]

    def bind(self, module, inputs: list):
        """Inputs converted once; the timed call is the module call alone."""
        import torch
        tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]

        def call():
            with torch.no_grad():
                return module(*tensors)
        return call

    def describe(self, module) -> dict:
        return {"inputs": [], "outputs": [], "note": "TorchScript-mobile files carry no input shapes"}

    def version(self) -> str:
        from importlib.metadata import version as v
        return v("torch")


def _cause(e: Exception) -> str:
    """The line that says what went wrong: the first, except after TorchScript's 'The following
    operation failed...' header, where it is the last 'XxxError: ...' line of the script traceback."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if lines and lines[0].startswith("The following operation failed"):
        errs = [ln for ln in lines if ln.split(":", 1)[0].endswith("Error")]
        return (errs or lines)[-1]
    return lines[0] if lines else type(e).__name__  # later lines are debug-handle noise


ADAPTER = LiteInterpreter()
