"""What a SavedModel folder holds, checked before TensorFlow loads it: a SavedModel is a program (TF's
security guide), so its graphs may only compute.

    files = savedmodel.folder_files(Path("sm"))   # its regular files; BadModelFile names a link leaving it
    savedmodel.check(Path("sm"))                  # None, or BadModelFile naming the ops it refuses

The folder: every entry is a regular file or folder, or a link that stays inside it (a link out of it,
even to `/etc/passwd` or to a huge file, is refused with its name: hashing and loading read only the
folder). The graphs (`saved_model.pb` read with TensorFlow's protobuf classes; nothing is loaded or run):
every node of the top-level graph and of every function in the FunctionDefLibrary must be an op of
`tf_ops.ALLOWED` (pure tensor ops and the SavedModel plumbing). The one exception: the save/restore
functions the meta graph's saver_def names may hold checkpoint ops (SaveV2, RestoreV2, ...), as every TF2
SavedModel's do; TF2 loading never calls them (the loader restores variables itself). A TF1 SavedModel
(no object graph) is refused: loading it runs its init and restore ops. Asset file names must stay in
`assets/`.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.filecheck import tf_ops
from pipeline.filecheck.validate import BadModelFile

MAX_PB_BYTES = 2 * 2**30      # protobuf's own limit on one message


def folder_files(folder: Path) -> list[Path]:
    """The folder's regular files (sorted, links inside it resolved), without following any link out of it."""
    folder = Path(folder)
    root = folder.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = p.resolve()
                if target != root and root not in target.parents:
                    raise BadModelFile(f"{folder}: {p.relative_to(folder)} is a link out of the folder (to {target}); "
                                       "refused: copy the folder with `cp -rL` to take the files in")
                if target.is_dir():
                    raise BadModelFile(f"{folder}: {p.relative_to(folder)} is a link to a folder; refused "
                                       "(copy the folder with `cp -rL`)")
                st = target.stat()
            if stat.S_ISREG(st.st_mode):
                out.append(p)
            elif not stat.S_ISDIR(st.st_mode):
                raise BadModelFile(f"{folder}: {p.relative_to(folder)} is not a regular file (a device, pipe or "
                                   "socket); refused")
    return sorted(out, key=lambda p: str(p.relative_to(folder)))


def _funcs(node) -> set[str]:
    """The functions a NodeDef calls through its attributes (f, then_branch, body, branches, ...)."""
    out = set()
    for v in node.attr.values():
        if v.HasField("func"):
            out.add(v.func.name)
        if v.HasField("list"):
            out |= {f.name for f in v.list.func}
    return out


def check(folder: Path) -> None:
    folder = Path(folder)
    folder_files(folder)
    pb = folder / "saved_model.pb"
    if not pb.is_file():
        raise BadModelFile(f"{folder}: no saved_model.pb in it (not a SavedModel)")
    if pb.stat().st_size > MAX_PB_BYTES:
        raise BadModelFile(f"{folder}: saved_model.pb is over 2 GB (larger than a protocol buffer may be)")
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise BadModelFile(f"{folder}: saved_model.pb is not a readable SavedModel ({type(e).__name__})") from None
    if not sm.meta_graphs:
        raise BadModelFile(f"{folder}: saved_model.pb holds no meta graph")
    refused: dict[str, set[str]] = {}
    for mg in sm.meta_graphs:
        if not mg.object_graph_def.nodes:
            raise BadModelFile(f"{folder}: a TF1 SavedModel (no object graph): loading it runs its init and restore "
                               "ops; refused. Export it with TensorFlow 2 (tf.saved_model.save or Keras model.export)")
        _check_meta_graph(folder, mg, refused)
        for a in mg.asset_file_def:
            name = a.filename
            if not name or name.startswith("/") or ".." in Path(name).parts or "\\" in name:
                raise BadModelFile(f"{folder}: asset file name {name!r} leaves the assets/ folder; refused")
    if refused:
        ops = ", ".join(f"{op} ({why})" for op, whys in sorted(refused.items()) for why in sorted(whys))
        raise BadModelFile(f"{folder}: the SavedModel's graphs use {ops}; refused before TensorFlow loads it "
                           "(a model file must not touch files, the network or Python; docs/security.md)")


def _check_meta_graph(folder: Path, mg, refused: dict[str, set[str]]) -> None:
    lib = {f.signature.name: f for f in mg.graph_def.library.function}
    saver = {mg.saver_def.save_tensor_name.split(":")[0], mg.saver_def.restore_op_name.split(":")[0]} - {""}
    top = list(mg.graph_def.node)
    # functions reached from the saver's nodes only may hold checkpoint ops; everything else may not
    from_saver = _reach(lib, [f for n in top if n.name in saver for f in _funcs(n)])
    exempt = from_saver - _reach(lib, [f for n in top if n.name not in saver for f in _funcs(n)]
                                 + list(mg.object_graph_def.concrete_functions))
    for fn_name, nodes in [("", top)] + [(n, list(f.node_def)) for n, f in lib.items()]:
        allowed = tf_ops.ALLOWED | (tf_ops.CHECKPOINT_OPS if fn_name in exempt else frozenset())
        for node in nodes:
            if node.op not in allowed:
                refused.setdefault(node.op, set()).add(tf_ops.why_refused(node.op))


def _reach(lib: dict, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in lib]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [f for n in lib[name].node_def for f in _funcs(n) if f in lib and f not in seen]
    return seen
