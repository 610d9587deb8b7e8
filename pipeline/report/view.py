"""One view of the records, built once per report: every section and plot reads it, so each rule the
report applies (first profile, fp32<->int8 pairing, quality metric, thresholds, support cell) is
written here once.

    from pipeline.report.view import build
    v = build(records)
    v.first_profile("digits_cnn")          # the run's first device profile (its provenance record)
    v.int8_pairs("digits_cnn")             # [(fp32, int8)] bench records, paired by registry.fp32_sibling
    v.quality(r)                           # Quality("accuracy", 0.98, 0.99) / ("reconstruction_mse", ...)
    v.tolerances("digits_cnn").accuracy_drop_points
    v.arm_cost(r, "neoverse-n1")           # net guest instructions per inference of r's artifact (device record)
    v.causes()                             # [(Cause, [records])]: every not-ok record grouped by causes.cause
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import provenance
from pipeline.artifact import ArtifactId
from pipeline.bench.device import CORES
from pipeline.parity import SEVERITY, Tolerances
from pipeline.report.causes import Cause, cause
from pipeline.schema import Record

# results whose run record does not store its profile order (older runs): the bench defaults' order
FALLBACK_PROFILE_ORDER = ("big-core", "2-core")

# the emulated device's cost metric: guest instructions per inference net of the one-op model's (the
# runtime's fixed cost per call, as on the host); records from `make device-tests` have only the gross count
ARM_METRIC = "net_instructions_per_inference"
# the core the int8 speed target and "what should I ship?" are judged on: the one with dotprod (a phone
# big core); the others are shown beside it
ARM_JUDGE_CORE = CORES[0]
DEVICE_COLUMN = "ARM64 {core}"     # the emulated device as a runtime column
# kinds whose not-ok records the report names by cause (support grid, findings, errors by cause)
CAUSE_KINDS = ("export", "bench", "device")

# the quality metric of a task (vs the ground truth)
TASK_METRIC = {"classification": "accuracy", "reconstruction": "reconstruction_mse",
               # no labels, nothing reconstructed (MTCNN's heads): parity with the framework reference
               "detection": "sqnr_db"}
# where a record keeps the float value it is judged against: bench = the twin's reference model,
# quant_debug = the fp32 sibling artifact
_REFERENCE_PREFIX = {"bench": "reference_", "quant_debug": "fp32_"}


@dataclass(frozen=True)
class Quality:
    metric: str                # "accuracy" | "reconstruction_mse" | "" (the record has neither)
    value: float | None
    reference: float | None    # see _REFERENCE_PREFIX


@dataclass(frozen=True)
class SupportCell:
    """One model x export path cell: the export record and every bench record of that artifact."""
    export: Record
    bench: tuple[Record, ...]

    @property
    def status(self) -> str:
        """The export's status; for an exported artifact "ok" when every runtime ran ok, "partial"
        when some did, else the first runtime's status."""
        if self.export.status != "ok":
            return self.export.status
        sts = [b.status for b in self.bench]
        if all(s == "ok" for s in sts):
            return "ok"
        return "partial" if "ok" in sts else next(s for s in sts if s != "ok")

    def not_ok(self) -> list[Record]:
        """One bench record per runtime that did not run ok (the last one, as records are ordered)."""
        return list({b.runtime: b for b in self.bench if b.status != "ok"}.values())


def generative(r: Record) -> bool:
    """A record of the generation harness (pipeline/generative/): its figures are per token."""
    return "generation" in r.info


def label(r: Record) -> str:
    """model/stem for our artifacts; the file's name for a user's own model."""
    return ArtifactId.of(r).label if r.path != "user" else Path(r.artifact).name


@dataclass
class View:
    records: list[Record]
    by_kind: dict[str, list[Record]]
    run: Record | None                        # the latest provenance record
    profile_order: tuple[str, ...]
    support: dict[tuple[str, str], SupportCell]   # (artifact stem, model) -> cell
    device: dict[tuple, Record] = field(default_factory=dict)  # (model, source, path, runtime, core) -> record
    _tolerances: dict[str, Tolerances] = field(default_factory=dict)
    _tasks: dict[str, str | None] = field(default_factory=dict)
    _cause_no: dict[str, int] = field(default_factory=dict)
    _outcomes: dict | None = None

    def kind(self, kind: str) -> list[Record]:
        return self.by_kind.get(kind, [])

    def bench_ok(self, model: str | None = None, profile: str | None = None) -> list[Record]:
        """Ok bench records of the classic (one input, one output) artifacts; the generative ones have
        their own section (pipeline/report/generative.py)."""
        return [r for r in self.kind("bench") if r.status == "ok" and (model is None or r.model == model)
                and (profile is None or r.profile == profile) and not generative(r)]

    def timed(self, model: str | None = None, profile: str | None = None) -> list[Record]:
        """Bench records measured ok with a latency (what plots and comparisons read)."""
        return [r for r in self.bench_ok(model, profile) if "latency_p50_ms" in r.metrics]

    def _profile_key(self, p: str) -> tuple:
        return (self.profile_order.index(p) if p in self.profile_order else len(self.profile_order), p)

    def profiles(self, model: str | None = None) -> list[str]:
        """Profiles with timed records (of the model), the run's first profile first."""
        return sorted({r.profile for r in self.timed(model)}, key=self._profile_key)

    def first_profile(self, model: str | None = None) -> str:
        """The first profile of the run that has timed records (of the model): where accuracy,
        repeats and the operator profile are measured. "" when nothing was timed."""
        return next(iter(self.profiles(model)), "")

    def tolerances(self, model: str) -> Tolerances:
        """The model's registered tolerances; the defaults for a model no longer (or never) in the
        registry (older results, a user's own file)."""
        if model not in self._tolerances:
            self._tolerances[model] = self._spec_field(model, "tolerances") or Tolerances()
        return self._tolerances[model]

    def task(self, model: str) -> str | None:
        if model not in self._tasks:
            self._tasks[model] = self._spec_field(model, "task")
        return self._tasks[model]

    @staticmethod
    def _spec_field(model: str, name: str):
        import models
        try:
            return getattr(models.get(model), name)
        except (KeyError, ValueError, ImportError):
            return None

    def quality(self, r: Record) -> Quality:
        return self.quality_of(r.model, r.metrics, r.kind)

    def quality_of(self, model: str, m: dict, kind: str = "bench") -> Quality:
        """The metric that fits the model's task; for a model outside the registry, accuracy when
        the metrics have it, else reconstruction MSE."""
        task = self.task(model)
        metrics = [TASK_METRIC[task]] if task in TASK_METRIC else list(TASK_METRIC.values())
        metric = next((x for x in metrics if x in m), "")
        if not metric:
            return Quality("", None, None)
        return Quality(metric, m[metric], m.get(_REFERENCE_PREFIX[kind] + metric))

    def int8_pairs(self, model: str, profile: str | None = None) -> list[tuple[Record, Record]]:
        """(fp32, int8) timed records of the same twin, format and runtime on `profile` (default: the
        model's first), the fp32 one on the int8 path's `registry.fp32_sibling`."""
        from export.registry import fp32_sibling
        rs = self.timed(model, profile or self.first_profile(model))
        by = {(r.source, r.path, r.format, r.runtime): r for r in rs}
        out = []
        from pipeline.parity import WEIGHT_ONLY
        for q in rs:
            # weight-only int8 (Core AI/Core ML w8) computes in float: the int8 targets (speed) are not its own
            if "int8" not in q.quantization or q.quantization in WEIGHT_ONLY:
                continue
            f = by.get((q.source, fp32_sibling(q.path), q.format, q.runtime))
            if f is not None and f.quantization == "fp32":
                out.append((f, q))
        return sorted(out, key=lambda p: (p[1].framework, p[1].source, p[1].path, p[1].runtime))

    def models(self, *kinds: str) -> list[str]:
        return sorted({r.model for k in kinds for r in self.kind(k)})

    def cores(self) -> list[str]:
        """Emulated core models with device records, the bench's order (dotprod core first)."""
        have = {k[4] for k in self.device}
        return [c for c in CORES if c in have] + sorted(have - set(CORES))

    def on_device(self, r: Record, core: str) -> Record | None:
        """The device record of r's artifact in r's runtime on `core` (None: not run there)."""
        return self.device.get((r.model, r.source, r.path, r.runtime, core))

    def arm_cost(self, r: Record, core: str) -> float | None:
        """Net guest instructions per inference of r's artifact on `core`, when it ran there with parity."""
        d = self.on_device(r, core)
        return d.metrics.get(ARM_METRIC) if d is not None and d.status == "ok" else None

    def outcomes(self) -> dict[tuple[str, str], dict[str, Record]]:
        """(artifact stem, column) -> {model: record}, the columns "export", each host runtime (the worst
        profile counts) and each emulated core (`DEVICE_COLUMN`): the per-runtime matrix and a run's counts."""
        if self._outcomes is None:
            per: dict[tuple[str, str], dict[str, Record]] = defaultdict(dict)
            for e in self.kind("export"):
                per[(ArtifactId.of(e).stem, "export")][e.model] = e
            for b in self.kind("bench"):
                cur = per[(ArtifactId.of(b).stem, b.runtime)].get(b.model)
                if cur is None or SEVERITY[b.status] > SEVERITY[cur.status]:
                    per[(ArtifactId.of(b).stem, b.runtime)][b.model] = b
            for d in self.kind("device"):
                per[(ArtifactId.of(d).stem, DEVICE_COLUMN.format(core=d.profile))][d.model] = d
            self._outcomes = dict(per)
        return self._outcomes

    def causes(self) -> list[tuple[Cause, list[Record]]]:
        """Every not-ok export/bench/device record grouped by its cause (causes.cause), worst status
        first; numbered in this order wherever the report cites one."""
        groups: dict[str, tuple[Cause, list[Record]]] = {}
        for k in CAUSE_KINDS:
            for r in self.kind(k):
                if r.status != "ok":
                    c = cause(r)
                    groups.setdefault(c.key, (c, []))[1].append(r)
        # failures before findings before what was not attempted; then the cause that hits most models
        return sorted(groups.values(), key=lambda g: (-max(SEVERITY[r.status] for r in g[1]),
                                                      -len({r.model for r in g[1]}), -len(g[1]), g[0].short))

    def cause_number(self, r: Record) -> int:
        """1-based number of r's cause in `causes()`."""
        if not self._cause_no:
            self._cause_no.update({c.key: i for i, (c, _) in enumerate(self.causes(), 1)})
        return self._cause_no[cause(r).key]


def build(records: list[Record]) -> View:
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)
    run = provenance.latest(records)
    # the run's order first; profiles it did not measure (older records) in the defaults' order
    order = tuple(dict.fromkeys([*provenance.profile_order(run), *FALLBACK_PROFILE_ORDER]))
    bench = defaultdict(list)
    for r in by_kind["bench"]:
        bench[(ArtifactId.of(r).stem, r.model)].append(r)
    support = {(ArtifactId.of(e).stem, e.model): SupportCell(e, tuple(bench.get((ArtifactId.of(e).stem, e.model), ())))
               for e in by_kind["export"]}
    device = {(r.model, r.source, r.path, r.runtime, r.profile): r for r in by_kind["device"]}
    return View(records, dict(by_kind), run, order, support, device=device)
