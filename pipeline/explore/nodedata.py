"""Model Explorer node data from the records: per-operator time and per-layer int8 error on the graph.

    .venv/bin/python -m pipeline report     # also writes results/explorer/ (this module)
    .venv/bin/python -m pipeline explore digits_cnn keras__tflite_int8   # writes, then opens the graph

For each artifact, one JSON file per overlay, `results/explorer/<model>/<stem>.<overlay>.json`, in
Model Explorer's node-data format (`model_explorer.node_data_builder.ModelNodeData`: graph id ->
{"results": {node id: {"value": v}}, "gradient": [...]}), plus `results/explorer/index.json` naming
every overlay written and every artifact left without one, with the reason:

- `op_ms.<runtime>`: milliseconds per operator from the bench record's per-operator profile
  (`info["op_profile"]["node_ms"]`, `pipeline/bench/opprofile.py`); a PAD timed with the convolution
  that absorbs it counts on the convolution.
- `int8_sqnr_db`: SQNR (dB, lower = worse) of each operator's output from the quant-debug table record
  (`info["layers"]`, `pipeline/quant/debug.py`). The debugger converts the same twin with the export
  path's settings, but in another process, so Keras' automatic layer names and trace suffixes differ
  (`re_lu_1/Relu` there is `re_lu_9_1/Relu` in the artifact): a row goes on the artifact's operator
  whose output tensor name is the same once those numeric suffixes are dropped and whose type is the
  row's; a name two operators share (two unnamed ReLUs with nothing else in the name) is left out and
  counted in the overlay's note, not guessed.

Node ids: Model Explorer's built-in TFLite adapter (ai-edge-model-explorer 0.1.34) gives each operator
of a subgraph its index as id and names the graph after the subgraph. Only `.tflite` has such a
reliable key: Model Explorer has no built-in adapter for `.pte`, `.ptl`, `.onnx` or Core ML packages,
and ExecuTorch's profile names XNNPACK's internal operators, not graph nodes; those artifacts are
listed in the index as not shown, never matched by guess. Reads the records and the artifact files
(checked against the record's sha256), never logs.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import fsutil, parity
from pipeline.artifact import ArtifactId, resolve
from pipeline.schema import Record

FOLDER = "explorer"
SHOWN_FORMATS = ("tflite",)     # formats Model Explorer's built-in adapters open with known node ids
# time is relative within a model: pale (fastest operator) to red (slowest)
TIME_GRADIENT = [{"stop": 0, "bgColor": "#fff5f0"}, {"stop": 1, "bgColor": "#cb181d"}]


def sqnr_thresholds() -> list[dict]:
    """SQNR in absolute bands, not a gradient: one lossless operator (a max-pool at 148 dB) would
    otherwise paint every 40 dB layer as red as a broken one. Red at or below the int8 output bound of
    `pipeline/parity.py` (a layer that alone loses that much fails the parity check), orange up to twice
    it, uncoloured above: only the suspect layers stand out."""
    from pipeline.parity import DEFAULTS
    bound = DEFAULTS["int8"].min_sqnr_db
    return [{"value": bound, "bgColor": "#cb181d", "textColor": "#ffffff"},
            {"value": 2 * bound, "bgColor": "#fdae61"}]


@dataclass(frozen=True)
class Overlay:
    aid: ArtifactId
    name: str                       # op_ms.<runtime> | int8_sqnr_db
    artifact: str                   # the record's artifact path (project-relative)
    graph: str                      # Model Explorer graph id
    values: dict[str, float]        # node id -> value
    unit: str
    record: str                     # which record it comes from (kind/runtime/profile)
    note: str = ""

    def file(self, results: Path) -> Path:
        return self.aid.file(Path(results) / FOLDER, f"{self.name}.json")

    def node_data(self) -> dict:
        """Model Explorer's ModelNodeData JSON (graph id -> GraphNodeData)."""
        colours = {"gradient": TIME_GRADIENT} if self.unit == "ms" else {"thresholds": sqnr_thresholds()}
        return {self.graph: {"name": f"{self.name} ({self.unit})",
                             "results": {k: {"value": v} for k, v in self.values.items()}, **colours}}


@dataclass
class Built:
    overlays: list[Overlay] = field(default_factory=list)
    not_shown: dict[str, str] = field(default_factory=dict)    # artifact label -> why


@dataclass(frozen=True)
class TfliteGraph:
    graph: str                      # subgraph 0's name: Model Explorer's graph id
    ops: int                        # operators in subgraph 0
    output_names: list[str]         # per operator, its output tensor names joined by ','
    op_names: list[str]             # per operator, its type (CONV_2D)


def tflite_graph(path: Path) -> TfliteGraph:
    from ai_edge_litert.tools import flatbuffer_utils as fb
    model = fb.read_model(str(path))
    sg = model.subgraphs[0]

    def name(i: int) -> str:
        n = sg.tensors[i].name
        return n.decode() if isinstance(n, bytes) else str(n)
    name_of = sg.name.decode() if isinstance(sg.name, bytes) else str(sg.name or "")
    return TfliteGraph(name_of, len(sg.operators),
                       [",".join(name(i) for i in op.outputs if i >= 0) for op in sg.operators],
                       [fb.opcode_to_name(model, op.opcodeIndex) for op in sg.operators])


def name_key(tensor: str) -> str:
    """A TFLite tensor name without the numeric suffixes Keras adds per process and per trace:
    `digits_cnn_1/re_lu_9_1/Relu;digits_cnn_1/conv1_1/convolution` -> `digits_cnn/re_lu/Relu;digits_cnn/conv1/convolution`."""
    return ";".join("/".join(re.sub(r"(_\d+)+(?=(:\d+)?$)", "", c) for c in piece.split("/"))
                    for piece in tensor.split(";"))


def _artifact_file(r: Record) -> tuple[Path | None, str]:
    """The record's artifact when it still has the bytes the record measured, else (None, why)."""
    if not r.artifact:
        return None, "the record names no artifact file"
    f = resolve(r.artifact)
    if not f.is_file():
        return None, f"{r.artifact} is not there any more"
    if r.artifact_sha256 and fsutil.sha256_file(f) != r.artifact_sha256:
        return None, f"{r.artifact} changed since it was measured (sha256 differs)"
    return f, ""


def _op_time(r: Record, g: TfliteGraph) -> Overlay:
    prof = r.info["op_profile"]
    values = {k: float(v) for k, v in prof["node_ms"].items()}
    bad = [k for k in values if not (k.isdigit() and int(k) < g.ops)]
    if bad:   # the profile was taken on another graph: refuse rather than paint the wrong nodes
        raise ValueError(f"op profile nodes {bad[:5]} are not operators of {r.artifact} ({g.ops} ops)")
    return Overlay(ArtifactId.of(r), f"op_ms.{r.runtime}", r.artifact, g.graph, values, "ms",
                   f"bench {r.runtime}/{r.profile}", prof.get("method", ""))


def _int8_error(r: Record, artifact: str, g: TfliteGraph) -> Overlay:
    ops_of: dict[str, list[int]] = {}
    for i, names in enumerate(g.output_names):
        for key in {name_key(n) for n in names.split(",") if n}:
            ops_of.setdefault(key, []).append(i)
    rows_of: dict[str, int] = {}
    for row in r.info["layers"]:
        rows_of[name_key(row.get("tensor", ""))] = rows_of.get(name_key(row.get("tensor", "")), 0) + 1
    values, unmatched, exact = {}, [], 0
    for row in r.info["layers"]:
        key = name_key(row.get("tensor", ""))
        ops = ops_of.get(key, [])
        # one operator, one row and the same operator type: anything else would be a guess
        node = str(ops[0]) if len(ops) == 1 and rows_of[key] == 1 and g.op_names[ops[0]] == row["op"] else None
        if node is None:
            unmatched.append(row["layer"])
        elif not math.isfinite(row["sqnr_db"]):
            exact += 1          # no error at all (SQNR inf): JSON has no infinity, and nothing to show
        else:
            values[node] = float(row["sqnr_db"])
    note = f"{r.info.get('debugger', '')}, {r.info.get('error_kind', '')} error"
    if unmatched:
        note += f"; {len(unmatched)} row(s) not placed (no single operator of that name and type): {', '.join(unmatched[:5])}"
    if exact:
        note += f"; {exact} operator(s) without error (SQNR inf) not coloured"
    return Overlay(ArtifactId.of(r), "int8_sqnr_db", artifact, g.graph, values, "dB", "quant_debug table", note)


def build(records: list[Record]) -> Built:
    """Every overlay the records allow, and why the other measured artifacts have none."""
    out = Built()
    exports = {ArtifactId.of(r): r for r in records if r.kind == "export" and r.status == "ok"}
    profiled = [r for r in records if r.kind == "bench" and parity.ran(r.status)
                and r.device == "host" and (r.info.get("op_profile") or {}).get("ops")]
    tables = [r for r in records if r.kind == "quant_debug" and r.status == "ok" and not r.runtime
              and r.info.get("layers")]
    # one op-time overlay per artifact x runtime: the latest record with a profile
    latest: dict[tuple, Record] = {}
    for r in sorted(profiled, key=lambda r: r.created):
        latest[(ArtifactId.of(r), r.runtime)] = r
    todo = [(r, r) for r in latest.values()] + [(r, exports.get(ArtifactId.of(r))) for r in tables]
    graphs: dict[Path, TfliteGraph] = {}
    for r, art in todo:
        label = ArtifactId.of(r).label
        if art is None:
            out.not_shown[label] = "no ok export record for its artifact"
            continue
        if art.format not in SHOWN_FORMATS:
            out.not_shown[label] = (f".{art.format}: Model Explorer has no built-in adapter with node ids "
                                    "to match (only .tflite)")
            continue
        f, why = _artifact_file(art)
        if f is None:
            out.not_shown[label] = why
            continue
        if f not in graphs:
            try:
                graphs[f] = tflite_graph(f)
            except Exception as e:  # noqa: BLE001 - an unreadable file is a reason, never a failed report
                out.not_shown[label] = f"{art.artifact}: not a readable .tflite ({type(e).__name__}: {e})"
                continue
        g = graphs[f]
        if not g.graph:
            out.not_shown[label] = "subgraph 0 has no name, so Model Explorer's graph id is unknown"
            continue
        if r.kind == "bench" and "node_ms" not in r.info["op_profile"]:
            out.not_shown[label] = "its op profile predates per-node times: re-run the bench"
            continue
        try:
            out.overlays.append(_op_time(r, g) if r.kind == "bench" else _int8_error(r, art.artifact, g))
        except ValueError as e:
            out.not_shown[label] = str(e)
    for o in out.overlays:
        out.not_shown.pop(o.aid.label, None)
    return out


def write(records: list[Record], results: Path) -> Built:
    """Write every overlay and `index.json` under results/explorer/, removing overlays of older runs."""
    built = build(records)
    folder = Path(results) / FOLDER
    keep = set()
    for o in built.overlays:
        fsutil.write_json_atomic(o.file(results), o.node_data())
        keep.add(o.file(results))
    index = {"overlays": [{"artifact": o.artifact, "label": o.aid.label, "overlay": o.name, "unit": o.unit,
                           "file": str(o.file(results).relative_to(results)), "nodes": len(o.values),
                           "from": o.record, "note": o.note} for o in built.overlays],
             "not_shown": built.not_shown}
    fsutil.write_json_atomic(folder / "index.json", index)
    for f in folder.glob("*/*.json"):
        if f not in keep:
            f.unlink()
    return built
