"""The user's model: detect its kind from the path, load it, describe its inputs.

    src = sources.detect("my_model.pt2")           # BadInput (one line, exit 2) for anything else
    model = sources.load(src)                      # Loaded(model, framework, inputs, ...)

Kinds: `pt2` (torch.export.save; no user code runs), `keras` (Keras 3 file, safe_mode=True),
`savedmodel` (a TF SavedModel folder, one signature), `factory` (`file.py:function` returning
`(torch.nn.Module, example_inputs)` or a `keras.Model`; this runs the user's code), `hf_lm` (a Hugging
Face-style language model folder: config.json + safetensors + tokenizer.json; its own flow, package/lm.py).
A `.pt2` and a SavedModel are checked before torch/TensorFlow read them (`pipeline/filecheck/pt2.py`,
`savedmodel.py`: nothing in them may run code or touch files); `load` runs in a sandboxed worker
(pipeline/sandbox.py) in the package flow.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import fsutil
from pipeline.schema import first_line

KINDS = ("pt2", "keras", "savedmodel", "factory", "hf_lm")


class BadInput(ValueError):
    """A user input the tool refuses, with one line naming the file and what is wrong (exit 2)."""


@dataclass(frozen=True)
class Source:
    kind: str            # one of KINDS
    path: Path           # the file or folder (for a factory: the .py file)
    function: str = ""   # factory only
    signature: str = "serving_default"   # savedmodel only

    @property
    def text(self) -> str:
        return f"{self.path}:{self.function}" if self.function else str(self.path)

    @property
    def stem(self) -> str:
        return self.path.stem if self.kind != "savedmodel" else self.path.resolve().name

    def sha256(self) -> str:
        """Content hash of the source (a SavedModel: every file in the folder, with its relative name; a
        link out of the folder is refused, never followed)."""
        if self.path.is_dir():
            from pipeline.filecheck.savedmodel import folder_files
            from pipeline.filecheck.validate import BadModelFile
            try:
                files = folder_files(self.path)
            except BadModelFile as e:
                raise BadInput(str(e)) from None
            return fsutil.sha256_text(*[f"{f.relative_to(self.path)}:{fsutil.sha256_file(f)}" for f in files])
        return fsutil.sha256_file(self.path)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple          # with the batch dimension first (None where the model leaves it open)
    dtype: str


@dataclass
class Loaded:
    model: Any                     # torch.nn.Module, keras.Model or a SavedModelFn
    framework: str                 # torch | keras: the export paths' input kind
    inputs: list[TensorSpec]
    facts: dict = field(default_factory=dict)   # e.g. the torch version a .pt2 was written with

    def run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """The source model on one batch: a list of float32 outputs (the parity reference)."""
        if self.framework == "torch":
            import torch
            with torch.no_grad():
                out = self.model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in xs])
            outs = out if isinstance(out, (tuple, list)) else [out]
            return [o.detach().float().numpy() for o in outs]
        out = self.model(xs if len(xs) > 1 else xs[0], training=False)
        if isinstance(out, dict):
            out = [out[k] for k in sorted(out)]
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [np.asarray(o, np.float32) for o in outs]


class SavedModelFn:
    """A SavedModel signature as a callable model; `saved_model_dir` makes the TFLite paths convert
    with TFLiteConverter.from_saved_model (export/tflite_paths.py)."""

    def __init__(self, path: Path, signature: str):
        import tensorflow as tf
        self.saved_model_dir, self.signature = str(path), signature
        loaded = tf.saved_model.load(str(path))
        if signature not in loaded.signatures:
            raise BadInput(f"{path}: SavedModel has no signature {signature!r} "
                           f"(has: {', '.join(sorted(loaded.signatures)) or 'none'}); name one with --signature")
        self._loaded = loaded                         # keeps the variables alive
        self._fn = loaded.signatures[signature]
        self.input_specs = sorted(self._fn.structured_input_signature[1].items())

    def __call__(self, xs, training=False):
        import tensorflow as tf
        xs = xs if isinstance(xs, (list, tuple)) else [xs]
        out = self._fn(**{name: tf.constant(x) for (name, _), x in zip(self.input_specs, xs)})
        return [out[k].numpy() for k in sorted(out)]


def detect(text: str, signature: str = "serving_default") -> Source:
    path_part, sep, fn = text.rpartition(":")
    if sep and path_part.endswith(".py"):
        p = Path(path_part)
        if not p.is_file():
            raise BadInput(f"{p}: no such file (source {text!r})")
        if not fn.isidentifier():
            raise BadInput(f"{text}: {fn!r} is not a function name (expected file.py:function)")
        return Source("factory", p, fn)
    p = Path(text)
    if not p.exists():
        raise BadInput(f"{p}: no such file or folder")
    if not p.is_dir() and not p.is_file():
        raise BadInput(f"{p}: not a regular file (a device, pipe or socket)")
    if p.is_dir():
        from pipeline.filecheck import hf_lm
        if hf_lm.looks_like(p):
            return Source("hf_lm", p)
        if not (p / "saved_model.pb").exists():
            raise BadInput(f"{p}: a folder but not a TensorFlow SavedModel (no saved_model.pb in it) and not a "
                           "Hugging Face language model (no config.json in it)")
        from pipeline.filecheck.savedmodel import folder_files
        from pipeline.filecheck.validate import BadModelFile
        try:
            folder_files(p)     # a link out of the folder: refused by name, before anything reads it
        except BadModelFile as e:
            raise BadInput(str(e)) from None
        return Source("savedmodel", p, signature=signature)
    if p.suffix == ".pt2":
        return Source("pt2", p)
    if p.suffix == ".keras":
        return Source("keras", p)
    hint = " (a finished mobile file: time it with `python -m pipeline bench FILE`)" \
        if p.suffix in (".tflite", ".pte", ".ptl", ".onnx") else ""
    raise BadInput(f"{p}: unknown source kind {p.suffix or '(no extension)'!r}; expected a .pt2 "
                   f"(torch.export.save), a .keras file, a SavedModel folder or file.py:function{hint}")


def framework_of(src: Source) -> str:
    """The export paths' input kind, known before loading ("" for a factory: it may return either)."""
    return {"pt2": "torch", "keras": "keras", "savedmodel": "keras"}.get(src.kind, "")


def load(src: Source) -> Loaded:
    return {"pt2": _load_pt2, "keras": _load_keras, "savedmodel": _load_savedmodel,
            "factory": _load_factory}[src.kind](src)


def pt2_torch_version(path: Path) -> str:
    """The torch version a torch.export archive records (models/*.json), or "" when absent."""
    try:
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.endswith(".json") and "/models/" in n:
                    return str(json.loads(z.read(n)).get("torch_version", ""))
    except (zipfile.BadZipFile, OSError, ValueError):
        return ""
    return ""


def _load_pt2(src: Source) -> Loaded:
    import torch
    from pipeline.filecheck import pt2
    from pipeline.filecheck.validate import BadModelFile
    try:
        pt2.check(src.path)      # before torch reads a byte: nothing in the archive may run code
    except BadModelFile as e:
        raise BadInput(str(e)) from None
    written = pt2_torch_version(src.path)
    here = torch.__version__
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.CRITICAL)   # torch logs the whole traceback before raising; we say it in one line
    try:
        _sample_inputs_weights_only(src.path)
        with _env(TORCH_FORCE_WEIGHTS_ONLY_LOAD="1"):   # torch's own weights_only=False calls become safe
            ep = torch.export.load(str(src.path))
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 - any deserialisation failure is the user's file
        other = f"written by torch {written}, this is torch {here}: " if written and written != here else ""
        raise BadInput(f"{src.path}: torch.export.load cannot read it ({other}{first_line(e)})") from None
    finally:
        logger.setLevel(level)
    args = ep.example_inputs[0] if ep.example_inputs else ()
    names = [s for s in ep.graph_signature.user_inputs]
    if not args:
        vals = [n.meta["val"] for n in ep.graph.nodes if n.op == "placeholder" and n.name in names]
        args = tuple(torch.zeros(tuple(int(d) for d in v.shape), dtype=v.dtype) for v in vals)
    inputs = [TensorSpec(n, tuple(int(d) for d in a.shape), str(a.dtype).replace("torch.", ""))
              for n, a in zip(names, args)]
    return Loaded(_Unlifted(ep.module()), "torch", inputs, {"torch_version_written": written})


def _sample_inputs_weights_only(path: Path) -> None:
    """The archive's sample inputs loaded with weights_only=True (torch.export.load would retry a failure
    with weights_only=False): anything but tensors in (args, kwargs) is refused."""
    import io

    import torch
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if "/data/sample_inputs/" in n]
        for n in names:
            try:
                value = torch.load(io.BytesIO(z.read(n)), weights_only=True)
            except Exception as e:  # noqa: BLE001
                raise BadInput(f"{path}: its sample inputs ({n}) are not plain tensors ({first_line(e)[:150]}); "
                               "refused (torch would unpickle them with weights_only=False)") from None
            flat = list(value[0]) + list(value[1].values()) if isinstance(value, tuple) and len(value) == 2 and \
                isinstance(value[0], (tuple, list)) and isinstance(value[1], dict) else None
            if flat is None or not all(isinstance(t, torch.Tensor) for t in flat):
                raise BadInput(f"{path}: its sample inputs ({n}) are not a tuple of tensors; refused")


@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _unlifted_cls():
    import torch

    class Unlifted(torch.nn.Module):
        """An ExportedProgram's module as a plain nn.Module: the export paths call `.eval()`, which the
        unlifted graph refuses ("Calling eval() is not supported yet"); its mode was fixed at export."""

        def __init__(self, gm):
            super().__init__()
            self.gm = gm

        def train(self, mode: bool = True):
            self.training = mode
            return self

        def forward(self, *args):
            return self.gm(*args)
    return Unlifted


def _Unlifted(gm):
    return _unlifted_cls()(gm)


def _load_keras(src: Source) -> Loaded:
    import keras
    try:
        model = keras.saving.load_model(str(src.path), safe_mode=True)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{src.path}: Keras cannot load it with safe_mode=True ({first_line(e)})") from None
    return Loaded(model, "keras", _keras_inputs(model))


def _keras_inputs(model) -> list[TensorSpec]:
    return [TensorSpec(getattr(t, "name", f"input_{i}").split(":")[0], tuple(t.shape), str(t.dtype))
            for i, t in enumerate(model.inputs)]


def _load_savedmodel(src: Source) -> Loaded:
    from pipeline.filecheck import savedmodel
    from pipeline.filecheck.validate import BadModelFile
    try:
        savedmodel.check(src.path)   # before TensorFlow loads it: only pure ops, no links out of the folder
    except BadModelFile as e:
        raise BadInput(str(e)) from None
    try:
        fn = SavedModelFn(src.path, src.signature)
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{src.path}: TensorFlow cannot load the SavedModel ({first_line(e)})") from None
    inputs = [TensorSpec(n, tuple(s.shape.as_list()), s.dtype.name) for n, s in fn.input_specs]
    return Loaded(fn, "keras", inputs)


def _load_factory(src: Source) -> Loaded:
    name = "mb_user_" + hashlib.sha256(str(src.path.resolve()).encode()).hexdigest()[:12]
    sys.path.insert(0, str(src.path.resolve().parent))   # the user's module may import its neighbours
    try:
        spec = importlib.util.spec_from_file_location(name, src.path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        fn = getattr(mod, src.function, None)
        if not callable(fn):
            raise BadInput(f"{src.path}: defines no function {src.function!r}")
        result = fn()
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: its first line is the message
        raise BadInput(f"{src.text}: running it raised {first_line(e)}") from None
    finally:
        sys.path.pop(0)
    return _from_factory_result(src, result)


def _from_factory_result(src: Source, result) -> Loaded:
    try:
        import keras
        if isinstance(result, keras.Model):
            return Loaded(result, "keras", _keras_inputs(result))
    except ImportError:
        pass
    import torch
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        module, example = result
        example = example if isinstance(example, (tuple, list)) else (example,)
        if not example or not all(isinstance(x, torch.Tensor) for x in example):
            raise BadInput(f"{src.text}: example_inputs must be a tensor or a tuple of tensors")
        names = [f"input_{i}" for i in range(len(example))] if len(example) > 1 else ["input"]
        inputs = [TensorSpec(n, tuple(int(d) for d in x.shape), str(x.dtype).replace("torch.", ""))
                  for n, x in zip(names, example)]
        return Loaded(module.eval(), "torch", inputs)
    raise BadInput(f"{src.text}: returned {type(result).__name__}; expected (torch.nn.Module, example_inputs) "
                   "or a keras.Model")


def weights_sha256(loaded: Loaded) -> str:
    """Hash of the loaded model's parameters: a factory's file may read weights from elsewhere."""
    if loaded.framework == "torch":
        return fsutil.sha256_text(*[f"{k}:" + fsutil.sha256_text(v.detach().cpu().numpy().tobytes())
                                    for k, v in loaded.model.state_dict().items()])
    weights = loaded.model.get_weights() if hasattr(loaded.model, "get_weights") else []
    return fsutil.sha256_text(*[np.asarray(w).tobytes() for w in weights])


def save_weights(loaded: Loaded, path: Path) -> None:
    """The parent's weights, for the export worker: a factory called twice must give ONE model (an
    unseeded init would make every artifact differ from the reference the parent computed)."""
    if loaded.framework == "torch":
        arrays = {k: v.detach().cpu().numpy() for k, v in loaded.model.state_dict().items()}
    else:
        arrays = {f"w{i:05d}": np.asarray(w) for i, w in enumerate(loaded.model.get_weights())}
    fsutil.save_npz(path, **arrays)


def load_weights(loaded: Loaded, path: Path) -> None:
    with np.load(path) as z:
        if loaded.framework == "torch":
            import torch
            loaded.model.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
        else:
            loaded.model.set_weights([z[k] for k in sorted(z.files)])
