"""The interface every runtime adapter implements, with defaults for the optional parts.

    class MyRuntime(Runtime):           # in pipeline/runtimes/my_runtime.py, then ADAPTER = MyRuntime()
        FORMATS = ("tflite",)
        def available(self): ...; def load(self, path, threads=1): ...; def run(self, handle, inputs): ...
        def describe(self, handle): ...; def version(self): ...

Imports only the standard library (the adapters run under `.venv-tflite-runtime` too: numpy<2, no torch).
"""
from __future__ import annotations

import sys


class Runtime:
    FORMATS: tuple[str, ...] = ()
    INSTALL_HINT = ""
    # what the steady latency times: the default bind() times run() itself (input conversion included)
    TIMED_CALL = "run()"

    def python(self) -> str:
        """The interpreter a worker for this runtime runs under (another venv for an old runtime)."""
        return sys.executable

    # the runtime's module: found = installed (`available`), imported by the worker before its clocks
    MODULE = ""

    def available(self) -> bool:
        """Installed: the module is found, not imported (the bench parent asks this for every
        measurement; importing ExecuTorch or torch there cost it 5-30 s for nothing)."""
        import importlib.util
        try:
            return importlib.util.find_spec(self.MODULE) is not None
        except ImportError:   # a parent package missing
            return False

    def cannot_run_here(self) -> str:
        """Why this runtime can run nothing on this host (installed or not), or "". The bench starts no
        worker for it then: the measurement's record says why."""
        return ""

    def import_runtime(self) -> None:
        """Import the runtime's modules (the worker, before its clocks: an app pays this at start-up)."""
        if self.MODULE:
            import importlib
            importlib.import_module(self.MODULE)

    def load(self, path, threads: int = 1):
        """-> a handle; may raise (the worker turns that into a record)."""
        raise NotImplementedError

    def load_without_delegates(self, path, threads: int = 1):
        """-> a handle whose operators all run on the runtime's own kernels (its default delegate off),
        or None when the runtime has no such switch (ExecuTorch: the delegation is in the file)."""
        return None

    def run(self, handle, inputs: list) -> list:
        """float32 numpy in, float32 numpy out."""
        raise NotImplementedError

    def describe(self, handle) -> dict:
        """Input/output specs, operators, delegation: whatever the runtime tells."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def bind(self, handle, inputs: list):
        """-> a no-argument call for the timed loop. Default: run() on the same inputs; an adapter that
        can set its inputs once overrides this (and TIMED_CALL) so only the inference call is timed."""
        return lambda: self.run(handle, inputs)

    def resize(self, handle, shapes: list, name: str = "model") -> None:
        """Give dynamic input dimensions their sizes (--shape). Default: nothing to do, the runtime takes
        each call's input shapes as they come and run() checks them against the model."""
