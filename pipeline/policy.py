"""The policy: every bound, target and status the project judges by, defined once. `pipeline/parity.py`
judges with it and re-exports it, so consumers import one module:

    from pipeline import parity
    parity.DEFAULTS["int8"]                 # a user's model: parity bounds per quantization
    parity.Tolerances().fp32_atol           # a zoo model's bounds (ModelSpec.tolerances overrides them)
    parity.ran(r.status)                    # it ran: ok or mismatch
    parity.STATUS_MARK["mismatch"]          # "MISMATCH", as every report table shows it
    parity.elsewhere("apple_only").label    # "Apple only": a status of the "runs elsewhere" family

Nothing here imports more than the standard library (the schema and every worker import it). The
report's sentences about a bound are generated from these values (`num`, the rules' `prose()`), never
retyped; `tests/pipeline/test_policy.py` fails on a threshold-like constant defined anywhere else.
"""
from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field

EPS = 1e-9     # bounds are compared with this slack, never exactly at their edge
# weight-only schemes: Core ML/Core AI int8 weights, Core AI int4 weights and 4-bit palettes (float compute)
WEIGHT_ONLY = ("int8_weights", "int4_weights", "palette4_weights")
# 8da4w: int8 dynamic activations, int4 weights per group (torchao; the generative .pte paths)
QUANTIZATIONS = ("fp32", "fp16", "dynamic_int8", "int8") + WEIGHT_ONLY + ("8da4w",)


def num(v: float) -> str:
    """A bound as prose writes it: 1e-4 (not 0.0001), 5e-2, 15, 0.95."""
    s = f"{v:g}"
    if "e" not in s and v and abs(v) < 0.1 and float(f"{v:.0e}") == v:
        s = f"{v:.0e}"
    return re.sub(r"e(-?)\+?0*(\d)", r"e\1\2", s)


# ---------------------------------------------------------------- the "runs elsewhere" family

@dataclass(frozen=True)
class Elsewhere:
    """Artifacts that run only on another kind of device: exported here, nothing here can run them, so
    neither ok nor failed. A new kind (a Vulkan GPU, an NPU) is one entry in ELSEWHERE: the record
    status, the report's label, colour, legend and counts, and the rule that recognises its files all
    come from it."""
    status: str                      # the record status, "<where>_only"
    label: str                       # how tables show it
    devices: str                     # "Apple devices": "runs on {devices} only"
    systems: str                     # "iOS/macOS": where an app runs it
    runtime: str                     # what runs it there: "Core ML"
    color: str                       # its colour in the status grids
    formats: dict[str, str] = field(default_factory=dict)   # file format -> why only those devices run it
    delegates: tuple[str, ...] = ()  # ExecuTorch delegate ids that only those devices' builds register
    hosts: tuple[str, ...] = ()      # sys.platform values of a host that runs them ("" = none)
    platforms: tuple[str, ...] = ()  # bundle platforms (package) that ship such an artifact unverified

    def needs(self, path, fmt: str) -> str:
        """Why only these devices run this file (a fact of the file, whatever the host), or ""."""
        if fmt in self.formats:
            return self.formats[fmt]
        if fmt == "pte" and self.delegates:
            from pipeline.filecheck import flatbuf
            try:
                with open(path, "rb") as f:
                    ids = {d["id"] for m in flatbuf.pte_program(f.read()) for d in m["delegates"]}
            except (OSError, ValueError):
                return ""
            mine = sorted(ids & set(self.delegates))
            if mine:
                return (f"an ExecuTorch program delegated to {', '.join(mine)}: only ExecuTorch builds for "
                        f"{self.systems} register that backend")
        return ""

    def host_runs(self) -> bool:
        return sys.platform in self.hosts

    def count_label(self) -> str:
        return f"{self.label} (exported; runs on {self.systems} only, nothing ran here)"


ELSEWHERE: tuple[Elsewhere, ...] = (
    Elsewhere("apple_only", "Apple only", "Apple devices", "iOS/macOS", "Core ML", "#64b5f6",
              formats={"mlpackage": "a Core ML package: only Apple's Core ML framework (iOS/macOS) runs it"},
              delegates=("CoreMLBackend", "MPSBackend"), hosts=("darwin",), platforms=("ios",)),
)
ELSEWHERE_STATUSES = tuple(e.status for e in ELSEWHERE)


def elsewhere(status: str) -> Elsewhere | None:
    """The family member of a status, or None for a status of this host."""
    return next((e for e in ELSEWHERE if e.status == status), None)


def runs_elsewhere(path, fmt: str) -> tuple[str, str]:
    """THE rule for the family: (status, reason) when the artifact needs another kind of device and this
    host is not one, else ("", "")."""
    for e in ELSEWHERE:
        why = e.needs(path, fmt)
        if why and not e.host_runs():
            return e.status, why
    return "", ""


# ---------------------------------------------------------------- record statuses

@dataclass(frozen=True)
class Status:
    name: str
    mark: str        # how report tables show it
    color: str       # its colour in the status grids
    meaning: str     # the legend's sentence


# ok: ran and computes what the reference computes within the tolerance; mismatch: ran, computes
# something else (never counted as ok); the ELSEWHERE family: exported, runs on other devices only;
# failed: raised or crashed; unsupported: the toolchain cannot do it (a finding); skipped: not attempted
_STATUS = (
    Status("ok", "ok", "#4caf50", "ran and matched the reference within the tolerance"),
    Status("mismatch", "MISMATCH", "#8e24aa", "ran but outside the tolerance"),
    *(Status(e.status, e.label, e.color, f"exported, runs on {e.devices} only, nothing ran here")
      for e in ELSEWHERE),
    Status("failed", "FAILED", "#e53935", "it raised or crashed"),
    Status("unsupported", "unsupported", "#ff9800", "the toolchain cannot do it"),
    Status("skipped", "skipped", "#9e9e9e", "not attempted here, with the reason"),
)
STATUSES = tuple(s.name for s in _STATUS)
RAN = ("ok", "mismatch")    # a status whose artifact ran here (and was compared)


def ran(status: str) -> bool:
    """The artifact ran here, whatever its parity: ok or mismatch."""
    return status in RAN


# the status grids add two cells: "partial" (exported, some runtime not ok) and "missing" (no record)
_GRID = {"partial": ("partial", "#ffc107", "partial (some runtime failed)"), "missing": ("–", "#ffffff", "")}
CELL_STATUSES = ("ok", "partial", *(s for s in STATUSES if s != "ok"), "missing")
STATUS_MARK = {**{s.name: s.mark for s in _STATUS}, **{k: v[0] for k, v in _GRID.items()}}
STATUS_COLOR = {**{s.name: s.color for s in _STATUS}, **{k: v[1] for k, v in _GRID.items()}}
MEANING = {s.name: s.meaning for s in _STATUS}
# several records in one cell show the worst: a failure outranks a mismatch, which outranks a finding
# (unsupported), an artifact that runs elsewhere, and one not attempted
SEVERITY = {s: i for i, s in enumerate(("ok", "skipped", *ELSEWHERE_STATUSES, "unsupported", "mismatch", "failed"))}
# the support matrix's count sentence, in this order
COUNT_LABEL = {"ok": "ok everywhere", "partial": _GRID["partial"][2],
               **{e.status: e.count_label() for e in ELSEWHERE},
               "mismatch": "mismatch", "failed": "failed", "unsupported": "unsupported", "skipped": "skipped"}

# the operator probes' cells (probes/harness.py), worst last
PROBE_CELLS = ("ok", "not_delegated", *ELSEWHERE_STATUSES, "mismatch", "runtime_failed", "export_failed")
PROBE_LABEL = {"ok": "ok", "not_delegated": "not delegated", **{e.status: e.label for e in ELSEWHERE},
               "export_failed": "export failed", "runtime_failed": "runtime failed", "mismatch": "mismatch"}
PROBE_GOOD = ("ok", "not_delegated")    # ran and matched (some operators outside the delegate)


# ---------------------------------------------------------------- parity bounds

@dataclass(frozen=True)
class Thresholds:
    """Parity bounds of one quantization; None = not checked."""
    min_sqnr_db: float | None = None          # signal-to-quantization-noise ratio of the outputs
    min_top1_agreement: float | None = None   # share of samples whose top-1 equals the reference's
    max_rel_diff: float | None = None         # max abs diff / max(1, |reference| max)
    max_abs_diff: float | None = None         # absolute bound (the zoo's Tolerances use this)
    max_perplexity_increase_pct: float | None = None   # generative: held-out perplexity above the reference's

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and not v >= 0:
                raise ValueError(f"parity threshold {f.name} must be >= 0, got {v}")
        if self.min_top1_agreement is not None and self.min_top1_agreement > 1:
            raise ValueError(f"min_top1_agreement is a share (0..1), got {self.min_top1_agreement}")


# Defaults for a user's model (documented in docs/manifest.md). fp32 artifacts differ from the framework
# only by operator order/fusion (1e-6 relative seen on every path here); fp16 weights cost ~3-4
# decimal digits; int8 (static, dynamic-range or weights-only) typically lands at 20-35 dB SQNR on the zoo.
_INT8 = Thresholds(min_sqnr_db=15.0, min_top1_agreement=0.95)
DEFAULTS: dict[str, Thresholds] = {
    "fp32": Thresholds(min_sqnr_db=60.0, min_top1_agreement=0.99, max_rel_diff=1e-3),
    "fp16": Thresholds(min_sqnr_db=30.0, min_top1_agreement=0.98, max_rel_diff=5e-2),
    "dynamic_int8": _INT8,
    "int8": _INT8,
    # weight-only: the activations stay float, so these err less than static int8 does; int8's floor
    # bounds them (loose: digits_cnn's Core AI w4 kept 98.1 % top-1, w8 99.7 %)
    **{q: _INT8 for q in WEIGHT_ONLY},
}

# Generative artifacts (issue 26, pipeline/generative/): judged on the logits of every decode step of
# every prompt, teacher-forced along the reference's greedy tokens (stats.agreement over [steps, vocab]),
# and on the held-out perplexity. Top-1 agreement on the decisive steps is "greedy tokens identical to
# the reference" wherever the reference's pick is not a near-tie the artifact's own noise can flip
# (TIE_SIGMAS): fp32 must pick every decisive token the reference picks. Quantized: 8da4w (int4 weights
# in groups of 32, int8 activations) and int8 weights cost logit precision that the greedy tokens and
# the perplexity then show (docs/generative.md).
GENERATIVE: dict[str, Thresholds] = {
    "fp32": Thresholds(min_sqnr_db=60.0, min_top1_agreement=1.0, max_perplexity_increase_pct=0.1),
    "dynamic_int8": Thresholds(min_sqnr_db=20.0, min_top1_agreement=0.9, max_perplexity_increase_pct=5.0),
    "8da4w": Thresholds(min_sqnr_db=10.0, min_top1_agreement=0.8, max_perplexity_increase_pct=15.0),
    # weight-only (Core AI LM paths: dequantized at load, float compute): the bounds of their dynamic kin
    "int8_weights": Thresholds(min_sqnr_db=20.0, min_top1_agreement=0.9, max_perplexity_increase_pct=5.0),
    "int4_weights": Thresholds(min_sqnr_db=10.0, min_top1_agreement=0.8, max_perplexity_increase_pct=15.0),
}

# What a runtime did with an input at or past a generative artifact's declared bound (the bound probe,
# pipeline/generative/generate.py; executorch#20546: bounds not enforced at run time). Past a bound only
# a refusal is safe. An output within the bound is judged by its quantization's SQNR floor; one past it
# must also come within PAST_BOUND_MARGIN_DB of the artifact's own worst step inside its bounds (an
# int8 file's noise must not hide a clamped cache write: 31 dB past the cache vs 36 dB inside, measured
# on a litert-torch int8 file), so "accepted" means it ran AND matched a model without that bound.
BOUND_OUTCOMES = {
    "ok": "within the bound: ran and matched the reference",
    "wrong": "within the bound: ran but computed something else",
    "refused_valid": "within the bound, yet refused",
    "refused": "past the bound: refused with an error",
    "accepted": "past the bound: ran, and matched the reference (the bound is not enforced)",
    "silent_wrong": "past the bound: ran and returned a wrong output without an error",
    "crashed": "the runtime's process died on it (a native crash, a hang or the memory ceiling)",
}
SAFE_BOUND_OUTCOMES = ("ok", "refused", "accepted")
PAST_BOUND_MARGIN_DB = 3.0

# top-1 agreement is judged on the decisive samples: those whose reference top-1 leads the runner-up
# by more than TIE_SIGMAS x the artifact's output noise (a near tie can flip under int8 noise at 47 dB
# SQNR), as long as they are at least MIN_DECISIVE samples and MIN_DECISIVE_SHARE of the set
TIE_SIGMAS = 3.0
MIN_DECISIVE, MIN_DECISIVE_SHARE = 8, 0.5


@dataclass(frozen=True)
class Tolerances:
    """A zoo model's bounds (`ModelSpec.tolerances`; these are the defaults a model overrides): parity of
    its artifacts, the weight-transfer twin, and the quality a quantized artifact may lose."""
    fp32_atol: float = 1e-4          # max abs diff of fp32 artifacts vs their framework reference
    fp16_atol: float = 5e-2          # fp16-weight artifacts
    int8_top1_agreement: float = 0.97  # share of test samples whose int8 top-1 equals the reference's
    transfer_atol: float = 1e-4      # Keras weight-transfer twin vs PyTorch
    # the quality a quantized artifact (or a recovery plan) may lose vs its float reference: top-1
    # points for a classifier, % more reconstruction MSE for a model without labels. The int8 target,
    # the "what should I ship?" candidates and the best recovery plan all judge by them.
    accuracy_drop_points: float = 1.0
    mse_increase_pct: float = 5.0


# ---------------------------------------------------------------- the emulated device and the probes

@dataclass(frozen=True)
class DeviceRule:
    """Parity of the emulated ARM64 device's outputs with the host's (`pipeline/bench/device.py`)."""
    float_rel: float = 1e-4      # fp32/fp16: max |guest - host| <= this x max |host output|
    int8_top1: float = 1.0       # int8: share of samples with the host's top-1
    int8_steps: float = 1.0      # int8: within this many output quantization steps, compared in steps ...
    step_eps: float = 1e-3       # ... with this slack: float32 rounding of a dequantized value costs ~1e-6
                                 #     of a step (a diff of exactly one step must pass)

    def prose(self) -> str:
        steps = "one" if self.int8_steps == 1 else num(self.int8_steps)
        top1 = "identical top-1" if self.int8_top1 == 1 else f"top-1 agreement >= {num(self.int8_top1)}"
        return (f"fp32 max abs diff <= {num(self.float_rel)} of the output's scale; int8 {top1} and within "
                f"{steps} output quantization step{'' if self.int8_steps == 1 else 's'} (compared in steps, "
                f"epsilon {num(self.step_eps)})")


@dataclass(frozen=True)
class ProbeRule:
    """Parity of a one-operator probe's artifact with its framework (`probes/harness.py`)."""
    float_rel: dict[str, float] = field(default_factory=lambda: {"fp32": 1e-4, "fp16": 1e-2})
    int8_steps: float = 4.0      # int8 / dynamic int8: within this many output quantization steps (range/255) ...
    int8_sqnr_db: float = 20.0   # ... or a signal-to-quantization-noise ratio at least this

    def prose(self) -> str:
        rel = "; ".join(f"{q}: {num(v)}" if i else f"{q}: max abs diff <= {num(v)} x max |reference|"
                        for i, (q, v) in enumerate(self.float_rel.items()))
        return (f"{rel}; int8/dynamic int8: within {num(self.int8_steps)} output quantization steps or SQNR "
                f">= {num(self.int8_sqnr_db)} dB; indices and masks: exact")


DEVICE = DeviceRule()
PROBE = ProbeRule()


# ---------------------------------------------------------------- targets and other bounds

INT8_SIZE_TARGET = 3.5      # an int8 file is at least this many times smaller than its fp32 twin
INT8_MIN_SPEEDUP = 1.0      # ... and cheaper to run: fp32 / int8 cost above this
INT8_KERNEL_GAIN = 1.2      # a host whose int8/fp32 kernel peak is under this: int8 cannot win on compute
SAME_SIZE_RATIO = 1.1       # fp32 / int8 bytes under this: the quantizer left the weights in float
PACKAGE_SPEED_SLACK = 0.25  # package --prefer balanced: the smallest whose p50 is within this of the fastest
PEER_AGREEMENT = 0.10       # our LiteRT median and litert-benchmark's agree: raw or net within this share
PROXY_BAND = 3.0            # fp32 instructions per host microsecond within this factor: the proxy ranks as time

# the regression gate's defaults (`python -m pipeline check`, a run against a committed baseline);
# bench_check.toml (repo root) overrides them and says why each is what it is
REGRESSION_GATE = {
    "export": {"fail_on_dropped": True}, "size": {"max_growth_pct": 5.0},
    "quality": {"max_accuracy_drop_points": 1.0, "max_agreement_drop_points": 1.0, "max_mse_growth_pct": 10.0},
    "latency": {"mode": "fail", "different_machine": "warn", "profiles": ["big-core"],
                "max_slowdown_pct": 150.0, "min_abs_ms": 0.1, "max_floor_slowdown_pct": 50.0}}
