"""The runtime-version ladders: released runtimes per file format, oldest first, each run in its own
cached virtual environment (`envs.py`) by one worker (`measure.py`).

    ladder.select("tflite", "default")       # [Rung(tflite-runtime 2.14.0), Rung(ai-edge-litert 1.0.1), ...]
    ladder.select("onnx", "ai-edge-litert==2.3.0,onnxruntime==1.31.1")   # named rungs only
    rung.id, rung.label                      # "ai-edge-litert==1.2.0", "LiteRT 1.2.0"

One table (LADDERS): a rung is the pip distribution and version an app's runtime corresponds to
(LiteRT's Python wheel and its Android/iOS libraries are built from the same C++ source per release),
the adapter that runs it (`pipeline/runtimes/`), and the numpy pin its wheel needs (measured: the
ai-edge-litert 1.0.x and tflite-runtime wheels are built against numpy 1.x and fail to create an
interpreter under numpy 2: "A module that was compiled using NumPy 1.x cannot be run in NumPy 2").
Order is release order across distributions (TensorFlow's own interpreter releases, then
tflite-runtime 2.14, then the LiteRT releases from September 2024 on): "the lowest release that
passes" is read along it.

An environment holds the runtime's wheel and numpy only (`no_deps`): what the interpreter imports. The
wheels' other requirements (protobuf, sympy, tqdm...) serve their tools, and leaving them out halves
an ONNX Runtime environment (182 -> 98 MB for 1.15.1); tensorflow-cpu needs its whole tree.

The default ladder is one release per minor line (its last patch); `full` adds the other patches
and, for .tflite, the interpreters inside tensorflow-cpu 2.12-2.16 wheels (about 1 GB installed each).
ExecuTorch is not laddered: see NOT_MEASURED.
"""
from __future__ import annotations

from dataclasses import dataclass

LADDER_NAMES = ("default", "full", "none")


@dataclass(frozen=True)
class Rung:
    format: str           # the file format it runs: tflite | onnx
    dist: str             # pip distribution
    version: str
    adapter: str          # the runtime adapter module the worker runs it with (its ADAPTER)
    product: str          # the name an app developer pins: "LiteRT", "TFLite", "ONNX Runtime"
    numpy: str = ""       # the numpy pin its wheel needs ("" = whatever pip resolves)
    default: bool = True  # in the default ladder (else `full` only)
    no_deps: bool = True  # install the runtime and numpy alone (its other requirements serve its tools)

    @property
    def id(self) -> str:
        """The rung's identity in records, cache keys and the command line: a pip requirement."""
        return f"{self.dist}=={self.version}"

    @property
    def label(self) -> str:
        return f"{self.product} {self.version}"

    @property
    def env_name(self) -> str:
        return f"{self.dist}-{self.version}"

    def requirements(self) -> list[str]:
        return [self.id, self.numpy or "numpy"]


NUMPY1 = "numpy==1.26.4"   # the last numpy 1.x with Python 3.11 wheels, as .venv-tflite-runtime has
_LITERT, _TFLRT, _TF = "pipeline.runtimes.litert", "pipeline.runtimes.tflite_runtime", "pipeline.compat.tf_interpreter"
_ORT = "pipeline.runtimes.onnxruntime_rt"


def _litert(version: str, default: bool = True, numpy: str = "") -> Rung:
    return Rung("tflite", "ai-edge-litert", version, _LITERT, "LiteRT", numpy, default)


def _tf(version: str) -> Rung:
    # numpy as TensorFlow's own requirements pin it (2.12 wants numpy<1.24, all of them numpy<2)
    return Rung("tflite", "tensorflow-cpu", version, _TF, "TFLite", default=False, no_deps=False)


def _ort(version: str, default: bool = True, numpy: str = "") -> Rung:
    return Rung("onnx", "onnxruntime", version, _ORT, "ONNX Runtime", numpy, default)


LADDERS: dict[str, tuple[Rung, ...]] = {
    "tflite": (
        _tf("2.12.1"), _tf("2.13.1"),
        Rung("tflite", "tflite-runtime", "2.14.0", _TFLRT, "TFLite", NUMPY1),
        _tf("2.15.1"), _tf("2.16.2"),
        _litert("1.0.0", False, NUMPY1), _litert("1.0.1", numpy=NUMPY1),
        _litert("1.1.0", False), _litert("1.1.1", False), _litert("1.1.2"),
        _litert("1.2.0"), _litert("1.3.0"), _litert("1.4.0"),
        _litert("2.0.2", False), _litert("2.0.3"),
        *(_litert(f"2.1.{p}", False) for p in range(6)), _litert("2.1.6"),
        _litert("2.2.0"), _litert("2.3.0"),
    ),
    "onnx": (
        _ort("1.15.0", False), _ort("1.15.1", numpy=NUMPY1), _ort("1.16.3", False, NUMPY1),
        _ort("1.17.3", numpy=NUMPY1), _ort("1.18.1", False, NUMPY1), _ort("1.19.2"), _ort("1.20.1", False),
        _ort("1.21.1"), _ort("1.22.1", False), _ort("1.23.2"), _ort("1.24.4", False), _ort("1.25.1"),
        _ort("1.26.0", False), _ort("1.27.0"), _ort("1.28.0", False), _ort("1.29.0"), _ort("1.30.0", False),
        _ort("1.31.1"), _ort("1.32.0"),
    ),
}

# formats with no ladder, and why (a finding in the report and the manifest, not a silent gap)
NOT_MEASURED: dict[str, str] = {
    "pte": ("not measured: each ExecuTorch runtime wheel is built against one torch release (executorch 1.0.0 "
            "requires torch>=2.9,<2.10; its runtime bindings beside this host's torch 2.13.0 fail to import: "
            "undefined symbol c10::impl::cow::materialize_cow_storage), other torch releases from the registry "
            "pull gigabytes of CUDA packages here, and executorch 1.0.0's own requirements do not resolve to "
            "wheels (hydra-core needs antlr4-python3-runtime 4.9, published as source only); measured on "
            "executorch 1.5.1 only, the bench's column"),
    "aimodel": ("not measured: Core AI ships with the operating system (the file's minimum OS is the manifest's "
                "runtime.minimum.minimum_os), and its Linux runtime has pre-releases only (coreai-core 1.0.0b1 to "
                "1.0.0b3), none an app pins; measured on 1.0.0b3 only, the bench's column"),
}


def formats() -> list[str]:
    return list(LADDERS)


def by_id(rung_id: str) -> Rung:
    for rungs in LADDERS.values():
        for r in rungs:
            if r.id == rung_id:
                return r
    known = ", ".join(r.id for rs in LADDERS.values() for r in rs)
    raise KeyError(f"unknown runtime release {rung_id!r}; known: {known}")


def select(fmt: str, which: str = "default") -> list[Rung]:
    """The rungs of `fmt` for `which`: "default", "full", "none", or comma-separated rung ids (the
    others' formats are left out), in ladder order."""
    rungs = LADDERS.get(fmt, ())
    if which == "none":
        return []
    if which == "default":
        return [r for r in rungs if r.default]
    if which == "full":
        return list(rungs)
    ids = [w.strip() for w in which.split(",") if w.strip()]
    if not ids:
        raise ValueError(f"--ladder {which!r}: expected default, full, none or rung ids like ai-edge-litert==2.3.0")
    wanted = {by_id(i).id for i in ids}     # unknown ids fail here, listing the known ones
    return [r for r in rungs if r.id in wanted]


def position(r: Rung) -> int:
    """Where a rung stands in its format's ladder (release order)."""
    return LADDERS[r.format].index(r)
