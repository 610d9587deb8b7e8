"""Every artifact the device can run: same inputs on the host and on emulated ARM64 cores.

The parity rule is the bench's (pipeline/bench/device.py `compare`): fp32 (and fp16-weight) artifacts:
max |guest - host| <= 1e-4 x max |host output|. int8 artifacts (any quantization naming int8): identical
top-1 labels, and outputs within one quantization step, compared in steps (integer outputs exactly; float
outputs as diff / step, with an epsilon of 1e-3 step for float32 rounding of dequantized values). The
step is the output tensor's scale when it is quantized; for float outputs of an int8 graph,
(max - min) / 255 of the host output.
Each run also reports guest instructions per inference (QEMU plugin, deterministic) per core
model. Emulated wall time is never reported: it says nothing about a device's latency.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cases import FIXTURE_MODEL, Case, _record_dict, all_cases
from device import DEVICE_NAME, RUNTIME_OF_EXT, run_host
import runner

from pipeline.bench.device import COUNT_RUNS, LIMIT, is_int8  # noqa: E402
from pipeline.bench.device import compare as device_compare  # noqa: E402

_host_cache: dict = {}
_pte_batches: dict = {}  # cpu -> {artifact path: GuestRun | Exception}


def _resolve(case: Case, fixture_root: Path | None) -> tuple[Path, Path, dict]:
    root = Path(case.root) if case.origin == "pipeline" else fixture_root
    art = root / case.rel
    rec_path = Path(case.record) if case.record else art.with_name(art.stem + ".record.json")
    if not art.exists():
        pytest.skip(f"{case.rel} was not produced (see make_fixtures.py output)")
    return art, rec_path, _record_dict(rec_path)


def _is_int8(rec: dict, meta: dict) -> bool:
    return is_int8(rec.get("quantization") or "", meta)


def compare(host: dict, host_meta: dict, guest: dict, rec: dict) -> tuple[dict, list[str]]:
    """The parity rule of the bench's device column (pipeline/bench/device.py), one place."""
    return device_compare(host, host_meta, guest, rec.get("quantization") or "")


@pytest.fixture
def fixture_root_if_needed(request, case):
    return request.getfixturevalue("fixture_root") if case.origin == "fixture" else None


def snapshot(art: Path, tmp_factory) -> tuple[Path, Path, str]:
    """Copy the artifact and its inputs aside, keyed by content: host and guest then run the very
    same bytes even while the pipeline rewrites artifacts/ (it does, concurrently)."""
    import shutil
    from pipeline.fsutil import sha256_file
    sha = sha256_file(art)
    if sha not in _snapshots:
        d = tmp_factory.mktemp("snap")
        shutil.copy(art, d / art.name)
        shutil.copy(art.parent / "train" / "eval.npz", d / "eval.npz")
        _snapshots[sha] = (d / art.name, d / "eval.npz", sha)
    return _snapshots[sha]


_snapshots: dict = {}


def guest_run(device, art: Path, inputs: Path, cpu: str, tmp_path: Path, request):
    """LiteRT: one guest process per artifact. ExecuTorch: importing torch takes minutes under
    emulation, so the first .pte test on a core runs every .pte artifact in one guest process."""
    if art.suffix != ".pte":
        return device.run(art, inputs, tmp_path / "guest.npz", cpu, count_runs=COUNT_RUNS, limit=LIMIT)
    if cpu not in _pte_batches:
        jobs = []
        out = request.getfixturevalue("tmp_path_factory").mktemp(f"pte-{cpu}")
        for c in all_cases():
            if not c.rel.endswith(".pte"):
                continue
            root = Path(c.root) if c.origin == "pipeline" else request.getfixturevalue("fixture_root")
            a = root / c.rel
            if a.exists() and (a.parent / "train" / "eval.npz").exists():
                a_snap, i_snap, _ = snapshot(a, request.getfixturevalue("tmp_path_factory"))
                jobs.append((a_snap, i_snap, out / f"{len(jobs)}.npz"))
        results = device.run_many(jobs, cpu, count_runs=COUNT_RUNS, limit=LIMIT)
        _pte_batches[cpu] = {str(j[0]): r for j, r in zip(jobs, results)}
    r = _pte_batches[cpu].get(str(art))
    if r is None:  # the artifact changed after the batch ran: run this one on its own
        r = device.run_many([(art, inputs, tmp_path / "guest.npz")], cpu, count_runs=COUNT_RUNS, limit=LIMIT)[0]
    if isinstance(r, Exception):
        raise r
    return r


@pytest.mark.parametrize("cpu", ["neoverse-n1", "cortex-a53"])
def test_artifact_on_device(case: Case, cpu: str, device, fixture_root_if_needed, tmp_path, device_results,
                            request):
    from pipeline.schema import Record, first_line

    if cpu not in device.cpus:
        pytest.skip(f"core model {cpu} not in the device recipe")
    runtime = RUNTIME_OF_EXT[Path(case.rel).suffix]
    if runtime not in device.runtimes:
        pytest.skip(f"guest runtime {runtime} not installed (opt-in: make device-tests DEVICE_RUNTIMES=litert,executorch)")
    art, _, rec = _resolve(case, fixture_root_if_needed)
    inputs = art.parent / "train" / "eval.npz"
    if not inputs.exists():
        pytest.skip(f"no test inputs {inputs}")

    art, inputs, sha = snapshot(art, request.getfixturevalue("tmp_path_factory"))
    base = dict(model=rec.get("model", FIXTURE_MODEL), source=rec.get("source", ""), path=rec.get("path", ""),
                format=rec.get("format", ""), framework=rec.get("framework", ""),
                quantization=rec.get("quantization", ""), runtime=runtime, profile=cpu, threads=1,
                device=DEVICE_NAME, artifact=case.rel, artifact_sha256=sha)
    info = {"cpu": cpu, "cpu_features": device.info["cpus"][cpu]["features"], "midr": device.info["cpus"][cpu]["midr"],
            "qemu": device.info["qemu_version"], "origin": case.origin, "fixture": case.origin == "fixture",
            "runtime_requirements": device.runtimes[runtime]["requirements"],
            "sysroot_bytes": device.info["sysroot_bytes"],
            "instructions_note": "guest instructions between markers around count_runs invoke() calls "
                                 "(incl. Python binding overhead) / count_runs; not a latency"}
    try:
        key = sha
        if key not in _host_cache:
            _host_cache[key] = run_host(art, inputs, tmp_path / "host.npz", limit=LIMIT)
        host, host_meta = _host_cache[key]
        g = guest_run(device, art, inputs, cpu, tmp_path, request)
        metrics, failed = compare(host, host_meta, g.outputs, rec)
        metrics["guest_instructions_per_inference"] = g.insns_per_inference()
        metrics["runtime_footprint_bytes"] = float(device.runtimes[runtime]["footprint_bytes"])
        info.update(count_runs=COUNT_RUNS, guest_vcpus=g.vcpus, layout=g.meta["layout"],
                    input_dtype=g.meta["input_dtype"], output_dtype=g.meta["output_dtype"],
                    rule="int8" if _is_int8(rec, host_meta) else "fp32")
        assert g.vcpus == 1, f"guest ran {g.vcpus} threads: instruction counts are only exact with one"
    except Exception as e:  # a record says what failed, then the test fails
        device_results.append(Record(kind="device", status="failed", error=first_line(e), info=info, **base))
        raise
    status = "failed" if failed else "ok"
    device_results.append(Record(kind="device", status=status, error="; ".join(failed), metrics=metrics,
                                 info=info, **base))
    assert not failed, f"{case.id} on {cpu}: " + "; ".join(failed) + f" ({json.dumps(metrics)})"


def test_instruction_count_is_deterministic(device, fixture_root, tmp_path):
    """Two processes, same artifact and core: the same guest instructions per inference."""
    if "litert" not in device.runtimes:
        pytest.skip("guest runtime litert not installed")
    art = fixture_root / "artifacts" / FIXTURE_MODEL / "keras__tflite_int8.tflite"
    inputs = art.parent / "train" / "eval.npz"
    a = device.run(art, inputs, tmp_path / "a.npz", "neoverse-n1", count_runs=3, limit=1)
    b = device.run(art, inputs, tmp_path / "b.npz", "neoverse-n1", count_runs=3, limit=1)
    assert a.insns_per_inference() == b.insns_per_inference() > 0


# ---------------------------------------------------------------- no device needed
def test_quantize_rounds_to_nearest_and_clips():
    x = np.array([0.49, 0.51, -0.51, 1.49, 1000.0, -1000.0], np.float32)
    q = runner.quantize(x, np.int8, scale=1.0, zero_point=0)
    assert q.tolist() == [0, 1, -1, 1, 127, -128]
    q = runner.quantize(np.array([0.0, 0.0196], np.float32), np.int8, scale=0.01, zero_point=-128)
    assert q.tolist() == [-128, -126]  # 1.96 rounds to 2: truncation would give -127


def test_layout_follows_the_model_input():
    x = np.zeros((2, 1, 8, 8), np.float32)
    y, layout = runner.to_layout(x, [1, 8, 8, 1])
    assert layout == "NHWC" and y.shape == (2, 8, 8, 1)
    y, layout = runner.to_layout(x, [1, 1, 8, 8])
    assert layout == "NCHW" and y.shape == x.shape
    with pytest.raises(ValueError):
        runner.to_layout(x, [1, 3, 8, 8])


def test_compare_rules():
    host = {"y": np.array([[0.0, 1.0], [2.0, 0.5]], np.float32)}
    ok, failed = compare(host, {}, {"y": host["y"] + 1e-5}, {"quantization": "fp32"})
    assert not failed and ok["top1_agreement"] == 1.0
    _, failed = compare(host, {}, {"y": host["y"] + 1e-2}, {"quantization": "fp32"})
    assert failed
    qmeta = {"output_quantization": {"scale": 0.1, "zero_point": 0, "dtype": "int8"}}
    _, failed = compare(host, qmeta, {"y": host["y"] + 0.1}, {"quantization": "int8"})
    assert not failed
    _, failed = compare(host, qmeta, {"y": host["y"][:, ::-1].copy()}, {"quantization": "int8"})
    assert failed
    # exactly one step, off by float32 rounding (0.06725406646728516 vs a step of 0.0672539547085762 was
    # a false failure on tiny_transformer's int8 artifact): compared in steps with the stated epsilon
    step = 0.0672539547085762
    meta1 = {"output_quantization": {"scale": step, "zero_point": 0, "dtype": "int8"}}
    h1 = {"y": np.array([[0.0, 1.0]], np.float32)}
    m, failed = compare(h1, meta1, {"y": h1["y"] + np.float32(0.06725406646728516)}, {"quantization": "int8"})
    assert not failed and m["max_abs_diff_steps"] < 1.001
    _, failed = compare(h1, meta1, {"y": h1["y"] + np.float32(2 * step)}, {"quantization": "int8"})
    assert failed
