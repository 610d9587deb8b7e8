"""Instructions per decoded token on the emulated ARM64 cores (`neoverse-n1`: with dotprod, a phone big
core; `cortex-a53`: without), for the generative artifacts whose runtime the device has (LiteRT).

    recs = device.run(targets, refs, cache_dir)      # kind="device", device="emulated-arm64"

One guest process per core runs every artifact (`guest.py`: the same Session code as the host) on the
first prompt of its model's workload: the prefill, then the reference's greedy tokens decoded one by
one; the QEMU plugin counts guest instructions between markers. Figures: `instructions_per_decoded_token`
(decode calls from the second on, the Python binding's few thousand instructions per call included),
`prefill_instructions` (the whole prompt, = the time to first token in instructions). Parity: the guest's
logits vs the reference's, judged by the artifact's generative bounds (parity.GENERATIVE) on that one
prompt. Cached by content (artifact, workload, reference, core, device recipe, code).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from pipeline import fsutil, parity
from pipeline.bench.device import CORES, DEVICE_NAME, _device_module
from pipeline.generative import compare
from pipeline.schema import Record, first_line, read_record_file

HERE = Path(__file__).parent
CODE = [HERE / f for f in ("guest.py", "device.py", "session.py", "cache_io.py", "generate.py", "compare.py")]
GUEST_RUNTIMES = ("litert",)    # ExecuTorch in the guest is opt-in (pipeline/bench/device.py OPT_IN)


def run(items: list[tuple], cache: Path, cores: tuple[str, ...] = CORES, log=print) -> list[Record]:
    """`items`: (Target, workload .npz, reference .npz) of the artifacts to run on the device."""
    from pipeline.bench.device import OPT_IN, RUNTIME_OF_FORMAT
    dm = _device_module()
    # runtimes the device has no build of at all (ONNX Runtime): no record, as in the classic column
    items = [i for i in items if i[0].runtime in RUNTIME_OF_FORMAT.values()]
    dev, why = dm.Device.load()
    records, todo = [], {}
    for t, wfile, rfile in items:
        for core in cores:
            base = _base(t, core)
            if dev is None:
                records.append(Record(status="skipped", error=f"emulated ARM64 device: {why}", **base))
            elif t.runtime not in GUEST_RUNTIMES or t.runtime not in dev.runtimes:
                records.append(Record(status="skipped", error=f"guest runtime {t.runtime} not on the emulated device: "
                                      f"{OPT_IN.get(t.runtime, 'not in its recipe')}", **base))
            elif core not in dev.cpus:
                records.append(Record(status="skipped", error=f"core model {core} not in the device recipe", **base))
            else:
                key = fsutil.sha256_text(t.export.artifact_sha256, fsutil.sha256_file(Path(wfile)),
                                         fsutil.sha256_file(Path(rfile)), core, dev.info.get("recipe_hash", ""),
                                         fsutil.source_hash(CODE))
                hit = read_record_file(cache / f"{key}.json")
                if hit is not None:
                    records.append(hit)
                else:
                    todo.setdefault(core, []).append((t, wfile, rfile, cache / f"{key}.json"))
    if not todo:
        return records
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-gen-device-", dir=cache) as tmp:
        for core, jobs in todo.items():
            log(f"[generate device] {core}: {len(jobs)} artifact(s) in one guest process")
            spec = [{"artifact": str(t.artifact), "facts": t.export.info["generation"], "workload": str(w),
                     "teacher": str(r), "outputs": str(Path(tmp) / f"{core}-{i}.npz")} for i, (t, w, r, _) in enumerate(jobs)]
            job_file = Path(tmp) / f"{core}.json"
            job_file.write_text(json.dumps(spec))
            p, markers, _, vcpus, _ = dev.run_args(["-m", "pipeline.generative.guest", str(job_file)], core, "litert",
                                                   Path(tmp) / f"{core}.counts.txt", pythonpath=(str(fsutil.ROOT),))
            tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or [f"exit code {p.returncode}"]
            for j, ((t, _, rfile, cache_file), s) in enumerate(zip(jobs, spec)):
                rec = _record(t, core, dev, Path(s["outputs"]), rfile, markers, 4 * j, vcpus, tail[0])
                fsutil.write_atomic(cache_file, rec.to_json())
                records.append(rec)
                log(f"[generate device] {core} {t.export.model}/{t.export.source}__{t.export.path}: " + (
                    f"{rec.metrics['instructions_per_decoded_token']:,.0f} instructions per decoded token"
                    if rec.status == "ok" else f"{rec.status}: {rec.error}"))
    return records


def _base(t, core: str) -> dict:
    e = t.export
    return dict(kind="device", info={"generation": {"convention": t.facts.convention}}, device=DEVICE_NAME, profile=core, threads=1, runtime=t.runtime, model=e.model,
                source=e.source, path=e.path, format=e.format, framework=e.framework, quantization=e.quantization,
                artifact=e.artifact, artifact_sha256=e.artifact_sha256)


def _record(t, core: str, dev, out: Path, rfile, markers: dict, base: int, vcpus: int, tail: str) -> Record:
    rec = _base(t, core)
    info = {**rec.pop("info"), "cpu": core, "cpu_features": dev.info["cpus"][core]["features"], "qemu": dev.info.get("qemu_version", ""),
            "instructions_note": "guest instructions per decode() call from the second decoded token on (the Python "
                                 "binding and the cache copied in and out included): instructions, not a latency"}
    if not out.exists() or any(base + k not in markers for k in (1, 2, 3, 4)):
        return Record(status="failed", error=first_line(f"guest run on {core}: {tail}"), info=info, **rec)
    with np.load(out) as z:
        art = {"logits": z["logits"]}
        meta = json.loads(str(z["meta"]))
    with np.load(rfile) as z:
        ref = {"logits": z["logits"][:1], "tokens": z["tokens"][:1]}
    metrics, pinfo = compare.parity(art, ref)
    metrics.update(instructions_per_decoded_token=(markers[base + 4] - markers[base + 3]) / meta["decode_tokens"],
                   prefill_instructions=float(markers[base + 2] - markers[base + 1]),
                   prompt_tokens=float(meta["prompt_tokens"]), decode_tokens_counted=float(meta["decode_tokens"]),
                   runtime_footprint_bytes=float(dev.runtimes[t.runtime].get("footprint_bytes", 0)))
    info.update(pinfo, guest_vcpus=vcpus)
    v = parity.judge(metrics, t.export.quantization, parity.for_generation(t.export.quantization))
    errors = [v.reason] if v.status != "ok" else []
    if vcpus != 1:
        errors.append(f"guest ran {vcpus} threads: instruction counts are only exact with one")
    return Record(status="mismatch" if errors else "ok", error="; ".join(errors), metrics=metrics, info=info, **rec)
