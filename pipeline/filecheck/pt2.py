"""What a `.pt2` (torch.export.save) holds, checked before torch reads it: nothing in it may run code.

    pt2.check(Path("model.pt2"))      # None, or BadModelFile: one line naming the file and the entry

torch 2.13's `torch.export.load` (torch/export/pt2_archive/_package.py, torch/_export/serde/serialize.py)
runs code from the file in these places, each refused here:
- a weight or constant marked `use_pickle: true` in `data/{weights,constants}/<m>_*_config.json` is read
  with `torch.load(weights_only=False)`; `custom_obj_*` constants with TorchScript's unpickler,
  `opaque_obj_*` with `pickle.loads`; legacy `<m>.pt` weight/constant files and the pre-2.8 archive
  layout (`serialized_*.pt`) fall back to `weights_only=False` -> only tensor payloads are accepted;
- `data/aotinductor/` holds a compiled shared library that is dlopen'ed -> refused (as is every entry
  outside the layout torch.export.save writes);
- a graph node's `target` is resolved by getattr from `torch`, `operator` or `math` and called when the
  model runs (`torch.os.system` resolves) -> targets must be ATen/prims/quantized_decomposed operators,
  a few higher-order operators, or the symbolic-shape arithmetic export writes;
- symbolic sizes (`expr_str`) go through `sympy.sympify`, which evals -> a strict expression grammar;
- `guards_code` is exec'ed when the module is built -> must be empty or plain size comparisons;
- names become Python source in FX's code generation -> identifiers (or dotted paths) only.
Sample inputs (`data/sample_inputs/<m>.pt`) are a pickle torch loads with weights_only=True and, if that
fails, weights_only=False: `sources._load_pt2` loads them first with weights_only=True and refuses
anything but tensors, and sets TORCH_FORCE_WEIGHTS_ONLY_LOAD for the load.
Work is bounded by the file's size: every entry must be stored (torch.export.save compresses nothing),
so the bytes read never exceed the file, and each tensor's declared size must fit its payload (an empty
payload makes torch allocate the declared size).
"""
from __future__ import annotations

import io
import json
import pickletools
import re
import zipfile
from pathlib import Path

from pipeline.filecheck.validate import BadModelFile

MAX_ENTRIES = 200_000
MAX_JSON_BYTES = 512 * 2**20     # a model's graph JSON: the zoo's largest is a few MB
ELEMENT_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 2, 7: 4, 8: 8, 9: 4, 10: 8, 11: 16, 12: 1, 13: 2, 28: 2, 29: 1,
                 30: 1, 31: 1, 32: 1, 33: 1, 34: 4, 35: 8}   # torch/_export/serde/schema.py ScalarType

# graph targets: namespaces of pure tensor operators, minus the ATen ones that touch files or print
OP_NAMESPACES = ("torch.ops.aten.", "torch.ops.prims.", "torch.ops.quantized_decomposed.")
DENIED_ATEN = frozenset({"from_file", "save", "load", "_print", "warn", "record_stream", "_test_warn_in_autograd"})
HIGHER_ORDER = frozenset({"cond", "while_loop", "map_impl", "scan", "associative_scan", "invoke_subgraph",
                          "wrap_with_set_grad_enabled", "wrap_with_autocast", "auto_functionalized",
                          "auto_functionalized_v2", "with_effects", "run_const_graph"})
SYM_TARGETS = frozenset({"_operator." + n for n in (
    "getitem", "eq", "ne", "le", "ge", "lt", "gt", "neg", "pos", "mul", "add", "sub", "floordiv", "mod", "pow",
    "truediv", "and_", "or_", "lshift", "rshift", "not_")} | {"math.trunc", "math.ceil", "math.floor", "math.sqrt"}
    | {"torch." + n for n in ("sym_not", "sym_int", "sym_float", "sym_ite", "sym_max", "sym_min", "sym_sqrt",
                              "sym_sum", "_sym_sqrt")})
# the names `sympy.sympify` may meet in an `expr_str` (serialize.py's sympy_functions + sympy's own)
SYMPY_NAMES = frozenset({
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "Max", "Min", "Eq", "Ne",
    "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "True", "False", "oo", "zoo", "nan", "Abs", "floor", "ceiling",
    "sqrt", "Piecewise", "ITE", "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "positive",
    "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "nonzero", "zero", "extended_real"})
SYMBOL = re.compile(r"[a-z]+\d+")                    # s0, u3, ...: export's shape symbols
EXPR = re.compile(r"[A-Za-z0-9_+\-*/%(),. <>=!&|~']*")
QUOTED_SYMBOL = re.compile(r"'[a-z]+\d+'")          # Symbol('s17', positive=True): sympy's srepr
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"[A-Za-z0-9_.]*")
GUARD_SOURCE = re.compile(r"L\['[A-Za-z_][A-Za-z0-9_]*'\](\[\d+\])*\.(size|stride)\(\)\[\d+\]")
NAME_KEYS = ("name", "as_name", "user_input_name", "output_name", "arg_name")
FQN_KEYS = ("parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn", "path_name")


def _refuse(path: Path, what: str) -> BadModelFile:
    return BadModelFile(f"{path}: {what}; refused before torch reads it (a .pt2 must not run code)")


def check(path: Path) -> None:
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise BadModelFile(f"{path}: not a torch.export archive (not a readable zip: {e}); write it with "
                           "torch.export.save") from None
    with z:
        infos = z.infolist()
        if not infos or len(infos) > MAX_ENTRIES:
            raise BadModelFile(f"{path}: a zip with {len(infos)} entries, not a torch.export archive")
        roots = {i.filename.split("/", 1)[0] for i in infos}
        if len(roots) != 1 or any("/" not in i.filename for i in infos):
            raise BadModelFile(f"{path}: not a torch.export archive (entries under {len(roots)} top folders; "
                               "torch.export.save writes one)")
        root = roots.pop() + "/"
        names = {i.filename[len(root):]: i for i in infos}
        for rel, info in names.items():
            if info.compress_type != zipfile.ZIP_STORED:
                raise _refuse(path, f"entry {rel!r} is compressed (torch.export.save compresses nothing; "
                              "a compressed entry could expand without bound)")
            if ".." in rel.split("/") or rel.startswith("/") or "\\" in rel:
                raise _refuse(path, f"entry name {rel!r} leaves the archive")
        if sum(i.file_size for i in infos) > path.stat().st_size:
            raise _refuse(path, "its entries declare more bytes than the file holds (overlapping entries)")
        _check_layout(path, names, z, root)


def _read_json(path: Path, z: zipfile.ZipFile, root: str, rel: str, names: dict):
    info = names.get(rel)
    if info is None:
        raise BadModelFile(f"{path}: not a complete torch.export archive (no {rel})")
    if info.file_size > MAX_JSON_BYTES:
        raise _refuse(path, f"{rel} is {info.file_size / 2**20:.0f} MB of JSON")
    try:
        return json.loads(z.read(root + rel))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
        raise BadModelFile(f"{path}: {rel} is not readable JSON ({type(e).__name__}: {str(e)[:100]})") from None


def _check_layout(path: Path, names: dict, z: zipfile.ZipFile, root: str) -> None:
    if "archive_format" not in names:
        legacy = [n for n in names if n.startswith("serialized_") or n == "version"]
        raise _refuse(path, "the pre-2.8 torch.export layout (serialized_*.pt pickles)" if legacy
                      else "no archive_format entry (not written by torch.export.save)")
    if z.read(root + "archive_format") != b"pt2":
        raise BadModelFile(f"{path}: archive_format is not 'pt2'")
    models = [n[len("models/"):-len(".json")] for n in names if n.startswith("models/") and n.endswith(".json")]
    if not models:
        raise BadModelFile(f"{path}: no models/<name>.json in the archive (not written by torch.export.save)")
    allowed = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
    for m in models:
        if not IDENT.fullmatch(m):
            raise _refuse(path, f"model name {m!r} is not an identifier")
        allowed |= {f"models/{m}.json", f"data/sample_inputs/{m}.pt"}
        for kind, prefix in (("weights", "weight_"), ("constants", "tensor_")):
            config = f"data/{kind}/{m}_{kind}_config.json"
            allowed.add(config)
            allowed |= _check_payloads(path, z, root, names, config, f"data/{kind}/", prefix)
        _check_graph(path, _read_json(path, z, root, f"models/{m}.json", names), f"models/{m}.json")
        if f"data/sample_inputs/{m}.pt" in names:
            check_tensor_pickle(path, z.read(root + f"data/sample_inputs/{m}.pt"), f"data/sample_inputs/{m}.pt")
    for rel in names:
        if rel in allowed or rel.startswith("extra/"):     # extra files are read as text only
            continue
        why = ("AOTInductor compiled code (a shared library torch would load)" if rel.startswith("data/aotinductor/")
               else "a pickled custom object" if "custom_obj_" in rel or "opaque_obj_" in rel
               else "a pickle (legacy .pt payload)" if rel.endswith(".pt") or rel.endswith(".pkl")
               else "not part of the layout torch.export.save writes")
        raise _refuse(path, f"entry {rel!r}: {why}")


def _check_payloads(path: Path, z, root: str, names: dict, config: str, folder: str, prefix: str) -> set[str]:
    """Every payload of a weights/constants config: a plain tensor whose declared extent fits its bytes."""
    cfg = _read_json(path, z, root, config, names)
    entries = cfg.get("config") if isinstance(cfg, dict) else None
    if not isinstance(entries, dict):
        raise BadModelFile(f"{path}: {config} has no 'config' mapping")
    used = set()
    for fqn, meta in entries.items():
        where = f"{config} entry {fqn!r}"
        if not isinstance(meta, dict):
            raise BadModelFile(f"{path}: {where} is not an object")
        if meta.get("use_pickle") is not False:
            raise _refuse(path, f"{where} is marked use_pickle (torch would unpickle it with weights_only=False)")
        name = meta.get("path_name")
        if not isinstance(name, str) or not re.fullmatch(re.escape(prefix) + r"\d+", name):
            raise _refuse(path, f"{where} points at {name!r}, not a plain {prefix}N tensor payload")
        rel = folder + name
        if rel not in names:
            raise BadModelFile(f"{path}: {where} points at {rel}, which the archive lacks")
        used.add(rel)
        _check_extent(path, where, meta.get("tensor_meta"), names[rel].file_size)
    return used


def _ints(path: Path, where: str, values, what: str) -> list[int]:
    if not isinstance(values, list) or any(not isinstance(v, dict) or not isinstance(v.get("as_int"), int)
                                           for v in values):
        raise _refuse(path, f"{where}: {what} are not plain integers")
    return [v["as_int"] for v in values]


def _check_extent(path: Path, where: str, tm, nbytes: int) -> None:
    if not isinstance(tm, dict):
        raise BadModelFile(f"{path}: {where} has no tensor_meta")
    item = ELEMENT_BYTES.get(tm.get("dtype"))
    if item is None:
        raise BadModelFile(f"{path}: {where} has an unknown dtype code {tm.get('dtype')!r}")
    sizes = _ints(path, where, tm.get("sizes"), "sizes")
    strides = _ints(path, where, tm.get("strides"), "strides")
    offset = _ints(path, where, [tm.get("storage_offset")], "storage_offset")[0]
    if len(sizes) != len(strides) or any(s < 0 for s in sizes + strides) or offset < 0:
        raise BadModelFile(f"{path}: {where} declares sizes {sizes}, strides {strides}, offset {offset}")
    if 0 in sizes:
        return
    extent = (offset + sum((s - 1) * st for s, st in zip(sizes, strides)) + 1) * item
    if extent > nbytes:
        raise _refuse(path, f"{where} declares {extent} bytes but its payload holds {nbytes}")


def _check_graph(path: Path, model, rel: str) -> None:
    if not isinstance(model, dict) or not isinstance(model.get("graph_module"), dict):
        raise BadModelFile(f"{path}: {rel} has no graph_module")
    guards = model.get("guards_code") or []
    if not isinstance(guards, list):
        raise _refuse(path, f"{rel}: guards_code is not a list")
    for g in guards:   # size checks on the inputs: each input size counts as a symbol, the rest is arithmetic
        _check_expr(path, rel, GUARD_SOURCE.sub("s0", g) if isinstance(g, str) else g, "guard")
    for key in (model.get("range_constraints") or {}):
        _check_expr(path, rel, key)
    bad_targets: set[str] = set()
    _walk(path, rel, model, bad_targets)
    if bad_targets:
        raise _refuse(path, f"{rel}: the graph calls {', '.join(sorted(bad_targets)[:8])}, not tensor operators")


def allowed_target(t: str) -> bool:
    if t in SYM_TARGETS:
        return True
    if t.startswith("torch.ops.higher_order."):
        return t[len("torch.ops.higher_order."):] in HIGHER_ORDER
    for ns in OP_NAMESPACES:
        if t.startswith(ns):
            parts = t[len(ns):].split(".")
            return 1 <= len(parts) <= 2 and all(IDENT.fullmatch(p) for p in parts) and not (
                ns == "torch.ops.aten." and parts[0] in DENIED_ATEN)
    return False


def _check_expr(path: Path, rel: str, expr, what: str = "symbolic expression") -> None:
    """Plain arithmetic on shape symbols: sympy.sympify evals the text, and torch execs a guard."""
    bare = re.sub(r"\d+\.\d+(e-?\d+)?", "", QUOTED_SYMBOL.sub("s0", expr)) if isinstance(expr, str) else ""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)
    bad = next((w for w in words if w not in SYMPY_NAMES and not SYMBOL.fullmatch(w)), None)
    if (not isinstance(expr, str) or len(expr) > 4096 or not EXPR.fullmatch(expr) or "__" in expr or "." in bare
            or "'" in bare or bad):
        raise _refuse(path, f"{rel}: {what} {str(expr)[:80]!r} is not plain arithmetic on shapes"
                      + (f" (names {bad!r})" if bad else "") + " (torch would evaluate it as Python)")


def _walk(path: Path, rel: str, o, bad: set[str]) -> None:
    """Every node target, name, path and symbolic expression of the JSON tree (nested graphs included)."""
    stack = [o]
    while stack:
        o = stack.pop()
        if isinstance(o, list):
            stack.extend(o)
            continue
        if not isinstance(o, dict):
            continue
        if "target" in o and "inputs" in o and "outputs" in o:
            t = o["target"]
            if not isinstance(t, str) or not allowed_target(t):
                bad.add(str(t)[:80])
        for k, v in o.items():
            if k in NAME_KEYS and isinstance(v, str) and v and not IDENT.fullmatch(v):
                raise _refuse(path, f"{rel}: name {v[:80]!r} is not an identifier (names become Python source)")
            if k in FQN_KEYS and isinstance(v, str) and not DOTTED.fullmatch(v):
                raise _refuse(path, f"{rel}: attribute path {v[:80]!r} is not a dotted name")
            if k == "forward_arg_names" and isinstance(v, list) and any(
                    not isinstance(a, str) or not IDENT.fullmatch(a) for a in v):
                raise _refuse(path, f"{rel}: forward_arg_names {str(v)[:80]} are not identifiers")
            if k == "expr_str":
                _check_expr(path, rel, v)
            elif k != "metadata" and isinstance(v, (dict, list)):
                stack.append(v)


# what torch.save of tensors (in tuples, lists, dicts) pickles: the rebuild functions and storage types
TENSOR_GLOBALS = frozenset({("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
                            ("collections", "OrderedDict"), ("torch", "UntypedStorage"), ("torch", "device"),
                            ("torch", "Size")}) | frozenset(
    ("torch", f"{t}Storage") for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char",
                                       "Byte", "Bool", "ComplexFloat", "ComplexDouble"))


def check_tensor_pickle(path: Path, data: bytes, rel: str) -> None:
    """A torch.save archive (a zip with `*/data.pkl`) that pickles tensors only: its pickle opcodes are read
    (pickletools: nothing runs) and every global it would import must be a tensor-rebuild one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise _refuse(path, f"{rel} is not a torch.save archive of tensors (no single data.pkl)")
            if z.getinfo(pkl[0]).compress_type != zipfile.ZIP_STORED:
                raise _refuse(path, f"{rel} has a compressed pickle")
            ops = list(pickletools.genops(z.read(pkl[0])))
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError) as e:
        raise _refuse(path, f"{rel} is not a readable torch.save archive ({type(e).__name__})") from None
    memo: dict = {}
    recent: list = []   # the ops that pushed the stack's top items (memo stores change nothing on it)
    for op, arg, _ in ops:
        found = None
        if op.name in ("GLOBAL", "INST"):
            found = tuple(arg.split(" ", 1))
        elif op.name == "STACK_GLOBAL":
            # exact only when the two pushes right before it are literal strings; else refused
            last = recent[-2:]
            found = tuple(a for _, a in last) if len(last) == 2 and all(k == "str" for k, _ in last) else ("?", "?")
        elif op.name.startswith("EXT"):
            found = ("copyreg extension", str(arg))
        if found is not None and found not in TENSOR_GLOBALS:
            raise _refuse(path, f"{rel} pickles {'.'.join(found)}, not a tensor (torch would call it)")
        if op.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
            memo[len(memo) if op.name == "MEMOIZE" else arg] = recent[-1] if recent else ("other", None)
            continue
        if op.name == "FRAME":
            continue
        pushed = (("str", arg) if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8")
                  else memo.get(arg, ("other", None)) if op.name in ("BINGET", "LONG_BINGET", "GET")
                  else ("other", arg))
        recent = recent[-1:] + [pushed]
