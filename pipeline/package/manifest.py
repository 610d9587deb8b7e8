"""`manifest.json`: what the app developer needs beside the shipped file (schema in docs/manifest.md).

    facts = manifest.tflite_facts(path)             # min_runtime_version + operator codes with versions
    facts = manifest.pte_facts(path, yaml_out)       # operators (gen_oplist) + delegates + ExecuTorch version
    facts = manifest.format_facts(cand, work)        # the one above for the candidate's format (.aimodel too)
    doc = manifest.build(...)                        # the whole manifest (a dict)

Operator lists are read from the file itself: .tflite through LiteRT's own flatbuffer schema
(`ai_edge_litert.schema_py_generated`), .pte through ExecuTorch's selective-build tool
(`python -m executorch.codegen.tools.gen_oplist`) and its program deserializer (delegates).
"""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version as pkg_version
from pathlib import Path

from pipeline import parity

MANIFEST_VERSION = 1


def tflite_facts(path: Path) -> dict:
    from ai_edge_litert import schema_py_generated as s
    buf = Path(path).read_bytes()
    m = s.ModelT.InitFromPackedBuf(buf, 0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    used = sorted({op.opcodeIndex for g in (m.subgraphs or []) for op in (g.operators or [])})
    ops = []
    for i in used:
        oc = m.operatorCodes[i]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))   # schema >= 2.3 keeps both
        if code == s.BuiltinOperator.CUSTOM:
            ops.append({"op": (oc.customCode or b"").decode(errors="replace"), "custom": True,
                        "version": int(oc.version)})
        else:
            ops.append({"op": names.get(code, str(code)), "custom": False, "version": int(oc.version)})
    ops.sort(key=lambda o: (o["custom"], o["op"]))
    meta = {}
    for md in m.metadata or []:
        name = (md.name or b"").decode(errors="replace")
        data = m.buffers[md.buffer].data if md.buffer < len(m.buffers) and m.buffers[md.buffer].data is not None \
            else b""
        if name == "min_runtime_version":
            meta[name] = bytes(bytearray(data)).rstrip(b"\0").decode(errors="replace")
    return {"min_runtime_version": meta.get("min_runtime_version", ""), "operators": ops,
            "schema_version": int(m.version)}


def pte_facts(path: Path, yaml_out: Path) -> dict:
    """Operators via ExecuTorch's selective-build tool (writes `yaml_out`, the file a selective build of
    the runtime takes), delegates via the program deserializer."""
    import yaml
    from executorch.exir._serialize._program import deserialize_pte_binary
    r = subprocess.run([sys.executable, "-m", "executorch.codegen.tools.gen_oplist",
                        f"--model_file_path={path}", f"--output_path={yaml_out}"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not Path(yaml_out).exists():
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"gen_oplist failed on {path}: {tail[:200]}")
    selected = yaml.safe_load(Path(yaml_out).read_text()) or {}
    pte = deserialize_pte_binary(Path(path).read_bytes())
    prog = getattr(pte, "program", pte)
    delegates = sorted({d.id for plan in prog.execution_plan for d in plan.delegates})
    return {"operators": sorted(selected.get("operators") or {}), "delegates": delegates,
            "executorch_version": pkg_version("executorch"), "selective_build": Path(yaml_out).name}


def aimodel_facts(cand) -> dict:
    """A Core AI .aimodel as the app sees it (from its export record's inspection,
    `pipeline/filecheck/coreai.py`): minimum OS, functions, weight storage and compression."""
    exp = cand.export
    ai = exp.info.get("coreai") or {}
    return {"minimum_os": ai.get("minimum_os", ""), "compatibility_version": ai.get("compatibility_version", ""),
            "function": "main", "functions": sorted(ai.get("functions", {})),
            "io_dtype": exp.info.get("io_dtype", "float32"),
            "weight_storage_bytes": ai.get("storage_bytes", {}),
            "compressed_weight_share": ai.get("compressed_weight_share"),
            "compression": exp.info.get("compression", {}), "coreai_core_version": _version("coreai-core"),
            "producer": (ai.get("metadata") or {}).get("producer", "")}


def format_facts(cand, work: Path) -> dict:
    """The runtime requirements of the shipped file, read from the file (or its inspection record)."""
    fmt = cand.export.format
    if fmt == "tflite":
        return tflite_facts(cand.artifact)
    if fmt == "aimodel":
        return aimodel_facts(cand)
    return pte_facts(cand.artifact, work / "selected_operators.yaml")


def layout(framework: str, shape: list) -> str:
    """The input layout the artifact expects: the source model's own (nothing is transposed)."""
    if len(shape) == 4:
        return "NCHW" if framework == "torch" else "NHWC"
    return "as the source model"


def tensors(specs: list[dict], framework: str, with_layout: bool) -> list[dict]:
    out = []
    for s in specs:
        t = {"name": s["name"], "shape": s["shape"], "dtype": s["dtype"]}
        if s.get("shape_signature", s["shape"]) != s["shape"]:
            t["shape_signature"] = s["shape_signature"]     # -1: a dimension the file leaves open
        if with_layout:
            t["layout"] = layout(framework, s["shape"])
        if s.get("scale"):
            t["quantization"] = {"scale": s["scale"], "zero_point": s["zero_point"],
                                 "real_value": "(q - zero_point) * scale"}
        out.append(t)
    return out


def build(*, name: str, platform: str, src, source_sha256: str, framework: str, calibration: str,
          samples: dict, cand, runtime: str, file_name: str, format_facts: dict, thresholds: dict,
          profiles: list[str], choice_reason: str, prefer: str, command: str,
          measured_minimum: dict | None = None) -> dict:
    exp = cand.export
    check = cand.checks[runtime]
    desc = check.describe
    loads = {rt: {"loads": parity.ran(c.status), "status": c.status,
                  "version": c.version, **({"error": c.error} if c.error else {})}
             for rt, c in cand.checks.items()}
    measured: dict = {"size_bytes": int(exp.metrics.get("size_bytes", 0)), "profiles": {}}
    for r in cand.bench:
        if r.runtime == runtime and parity.ran(r.status):
            measured["size_zipped_bytes"] = int(r.metrics.get("size_zipped_bytes", 0))
            measured["profiles"][r.profile] = {k: r.metrics.get(f"latency_{k}_ms") for k in ("p50", "p90", "p99")} | \
                {"threads": r.threads, "peak_rss_mb": r.metrics.get("peak_rss_mb")}
    for k in ("sqnr_db", "top1_agreement", "max_abs_diff", "accuracy", "reference_accuracy"):
        if k in check.metrics:
            measured[k] = check.metrics[k]
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": name, "platform": platform,
        "source": {"kind": src.kind, "path": src.text, "sha256": source_sha256, "framework": framework},
        "calibration": calibration, "samples": samples,
        "artifact": {"file": file_name, "sha256": exp.artifact_sha256, "bytes": int(exp.metrics.get("size_bytes", 0)),
                     "format": exp.format, "export_path": exp.path, "quantization": exp.quantization},
        "inputs": tensors(desc.get("inputs", []), framework, True),
        "outputs": tensors(desc.get("outputs", []), framework, False),
        "runtime": {"verified_with": {"name": runtime, "version": check.version},
                    "loads_here": loads, "minimum": format_facts,
                    "measured_minimum": measured_minimum or {"measured": False, "reason": "not run"}},
        "parity": {"status": check.status, "reason": check.error,
                   "thresholds": thresholds, "metrics": check.metrics},
        "measured": measured, "bench_profiles": profiles,
        "choice": {"prefer": prefer, "reason": choice_reason},
        "command": command,
        "sandbox": _sandbox_status(),   # the workers that opened the model: bubblewrap, or "off" (--no-sandbox)
        "tool_versions": {p: _version(p) for p in ("torch", "executorch", "tensorflow-cpu", "ai-edge-litert",
                                                   "litert-torch", "coreai-core", "coreai-torch", "coreai-opt")},
    }


def unverified(cand, file_name: str) -> dict:
    """A Core ML candidate in the iOS manifest: what it is and what Linux could check, never verified."""
    exp, info = cand.export, cand.export.info
    first = next(iter(cand.checks.values()), None)
    ml = info.get("coreml") or {}
    ml = (ml[0] if ml else {}) if isinstance(ml, list) else ml     # a .pte carries the package(s) it wraps
    return {"file": file_name, "export_path": exp.path, "format": exp.format, "quantization": exp.quantization,
            "sha256": exp.artifact_sha256, "bytes": int(exp.metrics.get("size_bytes", 0)),
            "verified": False, "status": first.status if first else "apple_only",
            "reason": first.error if first else "runs on Apple devices only",
            "minimum_deployment_target": ml.get("minimum_deployment_target", ""),
            "compute_precision": ml.get("compute_precision", ""), "int8_weight_share": ml.get("weights_int8_share"),
            "delegates": sorted({d.get("id", "") for d in info.get("pte_delegates", [])}),
            "cpu_operators": info.get("cpu_operators", [])}


def _sandbox_status() -> dict:
    from pipeline import sandbox
    return sandbox.status()


def _version(pkg: str) -> str:
    try:
        return pkg_version(pkg)
    except Exception:  # noqa: BLE001 - a package not installed has no version to report
        return ""
