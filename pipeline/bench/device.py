"""The emulated ARM64 column of every bench: each .tflite on a phone big core and an older core.

    python -m pipeline bench                 # host profiles, then this column (--no-device skips it)

Per core model (`neoverse-n1`: Armv8.2 with dotprod, a phone big core; `cortex-a53`: Armv8.0 without,
an older or little core) ONE guest process (user-mode QEMU, `device_tests/`) runs every artifact of the
run with the real runtime, on the same inputs as the host: parity with the host's outputs, and guest
instructions per inference counted by a QEMU plugin (deterministic), net of the runtime's fixed cost
per call (the one-op trivial model, run in the same process, as on the host). Instructions, not time:
no caches, no memory latency, no thermal throttling.

Records: `kind="device"`, `device="emulated-arm64"`, `profile=<core>`, cached by content hash (artifact,
inputs, core, device recipe, this code), so a warm run costs nothing. A machine that cannot build the
device gets `skipped` records with the reason. ExecuTorch in the guest is opt-in (a 3 GB CUDA torch
build for aarch64): `.pte` artifacts get `skipped` unless the device has it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import fsutil, parity, sandbox
from pipeline.schema import Record, first_line, read_record_file

CORES = ("neoverse-n1", "cortex-a53")
DEVICE_NAME = "emulated-arm64"
RUNTIME_OF_FORMAT = {"tflite": "litert", "pte": "executorch"}
COUNT_RUNS = 5
LIMIT = 16              # samples compared per artifact: emulation is slow, 16 is plenty for parity
# why a guest runtime is not in the default device, with the measured cost (device_tests/README.md)
OPT_IN = {"executorch": "opt-in (make device DEVICE_RUNTIMES=litert,executorch): its aarch64 torch is a 2.7 GB "
                        "CUDA build and a cold run of the .pte artifacts took 4 to 30 min on 2 cores (one torch "
                        "import per core, minutes each under emulation), over the 10-minute budget"}
# formats the guest cannot run, with the runtime they need and why: the column records them `skipped`
NOT_ON_DEVICE = {"aimodel": ("coreai", "no Core AI runtime for the ARM64 guest (coreai-core 1.0.0b3 ships its Linux "
                                       "CPU runtime for x86_64 only, no aarch64 wheel on this host's index); on an "
                                       "iPhone Apple's Core AI framework runs an .aimodel, not a Linux guest")}
HERE = Path(__file__).resolve()
DEVICE_TESTS = fsutil.ROOT / "device_tests"
TRIVIAL = HERE.parent / "data" / "trivial.tflite"


def is_int8(quantization: str, host_meta: dict) -> bool:
    return "int8" in (quantization or "") or bool(host_meta.get("output_quantization"))


def compare(host: dict, host_meta: dict, guest: dict, quantization: str) -> tuple[dict, list[str]]:
    """Parity metrics of guest vs host outputs and the list of failed checks (judged by the policy's
    `parity.DEVICE` rule; the device tests use this too)."""
    h, g = host["y"].astype(np.float64), guest["y"].astype(np.float64)
    if h.shape != g.shape:
        return {}, [f"output shapes differ: host {h.shape}, guest {g.shape}"]
    diff = float(np.abs(h - g).max()) if h.size else 0.0
    scale = float(np.abs(h).max()) if h.size else 0.0
    scale = scale or 1.0
    top1 = float((h.reshape(len(h), -1).argmax(1) == g.reshape(len(g), -1).argmax(1)).mean()) if len(h) else 1.0
    m = {"max_abs_diff": diff, "max_abs_diff_rel": diff / scale, "top1_agreement": top1,
         "output_scale": scale, "samples": float(len(h))}
    int8 = is_int8(quantization, host_meta)
    if int8:
        q = host_meta.get("output_quantization")
        step = q["scale"] if q else float(h.max() - h.min()) / 255
        m["quant_step"] = step
        if "y_q" in host and "y_q" in guest:
            steps = float(np.abs(host["y_q"].astype(np.int64) - guest["y_q"].astype(np.int64)).max())
        else:
            steps = diff / step if step > 0 else (0.0 if diff == 0 else float("inf"))
        m["max_abs_diff_steps"] = steps
    return m, parity.judge_device(m, int8)


@dataclass(frozen=True)
class Item:
    """One artifact for the device: its bench identity fields, file and inputs (`x`, PyTorch layout)."""
    base: dict
    artifact: Path
    inputs: Path
    quantization: str
    skip: str = ""          # why the guest cannot run it (NOT_ON_DEVICE): recorded `skipped`, not run


def _device_module():
    sys.path.insert(0, str(DEVICE_TESTS))
    try:
        import device as device_mod   # device_tests/device.py (host-side handle on the guest)
    finally:
        sys.path.remove(str(DEVICE_TESTS))
    return device_mod


def code_hash() -> str:
    """This code (its verdict is in the cached record: the policy's device rule included), the guest
    runner and host handle, every project module they import and the host libraries' versions (the host
    outputs are the reference), the instruction-count plugin and the one-op model."""
    from pipeline import deps
    return fsutil.sha256_text(deps.key([HERE, DEVICE_TESTS / "runner.py", DEVICE_TESTS / "device.py"]),
                              fsutil.source_hash([DEVICE_TESTS / "plugin" / "insn_count.c", TRIVIAL]))


def _key(item: Item, core: str, recipe: str) -> str:
    return fsutil.sha256_text(fsutil.sha256_file(item.artifact), fsutil.sha256_file(item.inputs), core, recipe,
                              item.quantization, str(COUNT_RUNS), str(LIMIT), code_hash())


def _host_outputs(items: list[Item], work: Path, box=None) -> dict[str, tuple[dict, dict] | Exception]:
    """The same runner with the host's runtimes, all artifacts in one process: the reference outputs."""
    dm = _device_module()
    jobs = [{"artifact": str(it.artifact), "inputs": str(it.inputs), "outputs": str(work / f"host{i}.npz"),
             "limit": LIMIT, "count_runs": 0} for i, it in enumerate(items)]
    (work / "host.json").write_text(json.dumps(jobs))
    cmd, env = [sys.executable, str(DEVICE_TESTS / "runner.py"), "--jobs", str(work / "host.json")], None
    if box is not None:
        cmd, env = box.wrap(cmd, work), box.env(dict(os.environ), work)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = {}
    for it, j in zip(items, jobs):
        f = Path(j["outputs"])
        out[str(it.artifact)] = (dm.load_outputs(f) if f.exists() else
                                 RuntimeError(f"host run of {it.artifact.name} failed: "
                                              f"{(p.stderr.strip().splitlines() or ['?'])[-1][:200]}"))
    return out


def _runtime(it: Item) -> str:
    fmt = it.base.get("format", "")
    return RUNTIME_OF_FORMAT.get(fmt) or NOT_ON_DEVICE.get(fmt, ("", ""))[0]


def run(items: list[Item], cache_dir: Path, cores: tuple[str, ...] = CORES, log=print,
        sandboxed: bool = False) -> list[Record]:
    """`sandboxed`: the items are a user's own files: host and guest runs in the OS sandbox."""
    dm = _device_module()
    dev, why = dm.Device.load()
    records: list[Record] = []
    if dev is None:
        return [Record(kind="device", status="skipped", error=it.skip or f"emulated ARM64 device: {why}",
                       device=DEVICE_NAME, profile=core, threads=1, runtime=_runtime(it), **it.base)
                for it in items for core in cores]
    recipe = dev.info.get("recipe_hash", "")
    todo: dict[str, list[tuple[Item, Path]]] = {}
    for core in cores:
        for it in items:
            rt = _runtime(it)
            base = dict(kind="device", device=DEVICE_NAME, profile=core, threads=1, runtime=rt, **it.base)
            if it.skip:
                records.append(Record(status="skipped", error=it.skip, **base))
                continue
            if core not in dev.cpus:
                records.append(Record(status="skipped", error=f"core model {core} not in the device recipe", **base))
                continue
            if rt not in dev.runtimes:
                records.append(Record(status="skipped", error=f"guest runtime {rt} not installed on the emulated "
                                      f"device: {OPT_IN.get(rt, 'opt-in')}", **base))
                continue
            cache = cache_dir / f"{_key(it, core, recipe)}.json"
            hit = read_record_file(cache)
            if hit is not None:
                records.append(hit)
                continue
            todo.setdefault(core, []).append((it, cache))
    if not todo:
        return records
    with tempfile.TemporaryDirectory(prefix=".tmp-device-", dir=cache_dir.parent if cache_dir.parent.exists()
                                     else None) as tmp:
        work = Path(tmp)
        pending = {str(it.artifact): it for jobs in todo.values() for it, _ in jobs}
        files = [str(p) for it in pending.values() for p in (it.artifact, it.inputs)]
        box = sandbox.Sandbox(reads=(str(dm.DEVICE_DIR), *files),
                              writes=(work,)) if sandboxed else None
        host = _host_outputs(list(pending.values()), work, box)
        for core, jobs in todo.items():
            log(f"[device] {core}: {len(jobs)} artifact(s) in one guest process")
            by_rt: dict[str, list] = {}
            for it, cache in jobs:
                by_rt.setdefault(RUNTIME_OF_FORMAT[it.base["format"]], []).append((it, cache))
            for rt, group in by_rt.items():
                trivial_in = work / "trivial-in.npz"          # x + 1 on one float: one sample of shape [1]
                np.savez(trivial_in, x=np.zeros((1,), np.float32))
                guest_jobs = [(TRIVIAL, trivial_in, work / f"{core}-{rt}-trivial.npz")] if rt == "litert" else []
                guest_jobs += [(it.artifact, it.inputs, work / f"{core}-{rt}-{i}.npz") for i, (it, _) in enumerate(group)]
                results = dev.run_many(guest_jobs, core, count_runs=COUNT_RUNS, limit=LIMIT, box=box)
                fixed = None
                if rt == "litert":
                    t, results = results[0], results[1:]
                    fixed = None if isinstance(t, Exception) else t.insns_per_inference()
                for (it, cache), g in zip(group, results):
                    rec = _record(it, core, rt, dev, host.get(str(it.artifact)), g, fixed)
                    fsutil.write_atomic(cache, rec.to_json())
                    records.append(rec)
                    log(f"[device] {core} {it.base.get('model')}/{it.base.get('source')}__{it.base.get('path')}: "
                        + (f"{rec.metrics.get('net_instructions_per_inference', 0):,.0f} instructions"
                           if rec.status == "ok" else f"{rec.status}: {rec.error}"))
    return records


def _record(it: Item, core: str, rt: str, dev, host, g, fixed) -> Record:
    base = dict(kind="device", device=DEVICE_NAME, profile=core, threads=1, runtime=rt, **it.base)
    info = {"cpu": core, "cpu_features": dev.info["cpus"][core]["features"], "midr": dev.info["cpus"][core]["midr"],
            "qemu": dev.info.get("qemu_version", ""), "count_runs": COUNT_RUNS,
            "instructions_note": "guest instructions per invoke() (incl. the Python binding), minus the one-op "
                                 "trivial model's: instructions, not a latency"}
    if isinstance(host, Exception) or host is None:
        return Record(status="failed", error=first_line(host or "no host reference"), info=info, **base)
    if isinstance(g, Exception):
        return Record(status="failed", error=first_line(g), info=info, **base)
    metrics, failed = compare(host[0], host[1], g.outputs, it.quantization)
    per_inf = g.insns_per_inference()
    metrics["guest_instructions_per_inference"] = per_inf
    if fixed is not None:
        metrics["trivial_instructions_per_inference"] = fixed
        metrics["net_instructions_per_inference"] = max(per_inf - fixed, 0.0)
    metrics["runtime_footprint_bytes"] = float(dev.runtimes[rt].get("footprint_bytes", 0))
    info.update(layout=g.meta.get("layout"), guest_vcpus=g.vcpus,
                rule="int8" if is_int8(it.quantization, host[1]) else "fp32")
    if failed:
        _explain(info, it, host[0]["y"], g.outputs["y"], metrics)
    if g.vcpus != 1:
        failed.append(f"guest ran {g.vcpus} threads: instruction counts are only exact with one")
    return Record(status="mismatch" if failed else "ok", error="; ".join(failed), metrics=metrics, info=info, **base)


def _explain(info: dict, it: Item, host_y: np.ndarray, guest_y: np.ndarray, metrics: dict) -> None:
    """Where the guest's outputs differ from the host's (by the bound `compare` judged with), the inputs
    there, and what the file computes (`pipeline/explain`)."""
    from pipeline.explain import evidence, filefacts
    per_value = parity.device_value_bound(metrics, "quant_step" in metrics)
    with np.load(it.inputs) as z:
        x = z["x"][:len(host_y)] if "x" in z.files else None
    info["evidence"] = evidence.of(host_y, guest_y, [x] if x is not None else [], per_value)
    info["file"] = filefacts.of(it.artifact, it.base.get("format", ""))


def items_from_targets(targets, work: Path) -> list[Item]:
    """Our artifacts (their eval inputs), and users' single-input .tflite files (seeded inputs of the
    file's input shape, or of --shape, written to `work` and named by content)."""
    out = []
    for t in targets:
        if t.format not in RUNTIME_OF_FORMAT and t.format not in NOT_ON_DEVICE:
            continue
        if t.export is not None:
            e = t.export
            base = dict(model=e.model, source=e.source, path=e.path, format=e.format, framework=e.framework,
                        quantization=e.quantization, artifact=e.artifact, artifact_sha256=e.artifact_sha256)
            if t.eval_npz is not None and Path(t.eval_npz).exists():
                out.append(Item(base, Path(t.artifact), Path(t.eval_npz), e.quantization,
                                NOT_ON_DEVICE.get(t.format, ("", ""))[1]))
            continue
        if t.format in NOT_ON_DEVICE:
            continue
        base = dict(model=str(t.artifact), path="user", format=t.format, artifact=str(t.artifact),
                    artifact_sha256=fsutil.sha256_file(t.artifact))
        inputs = _byom_inputs(t, work)
        if inputs is not None:
            out.append(Item(base, Path(t.artifact), inputs, ""))
    return out


def _byom_inputs(t, work: Path) -> Path | None:
    """Seeded float inputs for a user's single-input float .tflite (the runner feeds the first input)."""
    if t.format != "tflite" or t.input_files or t.shapes:   # the guest runner does not resize inputs
        return None
    try:
        from ai_edge_litert.interpreter import Interpreter
        ins = Interpreter(model_path=str(t.artifact)).get_input_details()
    except Exception:  # noqa: BLE001 - the host bench already recorded why this file does not load
        return None
    if len(ins) != 1 or np.dtype(ins[0]["dtype"]) != np.float32:
        return None
    shape = [int(d) for d in ins[0]["shape"]]
    if any(d < 1 for d in shape):
        return None
    x = np.random.default_rng(0).standard_normal([2 * shape[0], *shape[1:]]).astype(np.float32)
    work.mkdir(parents=True, exist_ok=True)
    f = work / f"inputs-{fsutil.sha256_text(str(shape))[:16]}.npz"
    if not f.exists():
        fsutil.write_with(f, lambda tmp: np.savez(tmp, x=x))
    return f
