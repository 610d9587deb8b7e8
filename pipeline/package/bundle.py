"""Write `DIR/<name>/` in one step: everything goes to a hidden temporary folder beside it, which is
renamed into place at the end (an interrupted run leaves no half-written bundle; a stale temp folder
is removed by the next run). Also the app developer's README (the candidates' report.html: page.py).

    bundle.write(out_dir, name, files={"android/model.tflite": path, ...}, texts={"report.html": html, ...})
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline import fsutil


def write(out_dir: Path, name: str, files: dict[str, Path], texts: dict[str, str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / name
    tmp = Path(tempfile.mkdtemp(prefix=f"{fsutil.TMP_PREFIX}{name}.", dir=out_dir))
    os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes it 0700: the bundle gets the user's usual mode
    try:
        for rel, src in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            if Path(src).is_dir():          # a Core ML .mlpackage is a folder
                shutil.copytree(src, tmp / rel)
            else:
                shutil.copyfile(src, tmp / rel)
        for rel, text in texts.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{fsutil.TMP_PREFIX}{name}.old.", dir=out_dir))
            os.replace(dest, old / name)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:   # a full or read-only disk: name the bundle, not a temp file inside it
        raise OSError(e.errno, e.strerror, str(dest)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_out(out_dir: Path) -> None:
    """--out must be a folder this user can write, found before any work (not after an hour of it)."""
    from pipeline.package.sources import BadInput
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=f"{fsutil.TMP_PREFIX}probe.", dir=out_dir) as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise BadInput(f"--out {out_dir}: cannot write there ({e.strerror or e})") from None


def clean_stale(out_dir: Path, name: str) -> None:
    """Temp folders of an interrupted run for this bundle (the caller holds the bundle's lock)."""
    if out_dir.is_dir():
        for p in out_dir.glob(f"{fsutil.TMP_PREFIX}{name}.*"):
            shutil.rmtree(p, ignore_errors=True)


_LOAD = {
    ("android", "tflite"): """LiteRT (Kotlin, `com.google.ai.edge.litert:litert`):
```kotlin
val model = CompiledModel.create(context.assets, "{file}", CompiledModel.Options(Accelerator.CPU))
val inputs = model.createInputBuffers(); val outputs = model.createOutputBuffers()
inputs[0].writeFloat(input)          // int8 inputs: quantize first (see Inputs)
model.run(inputs, outputs); val y = outputs[0].readFloat()
```
(or the classic `org.tensorflow.lite.Interpreter(file)` with `interpreter.run(input, output)`).""",
    ("android", "pte"): """ExecuTorch (Kotlin/Java, `org.pytorch:executorch-android`):
```kotlin
val module = Module.load(filesDir.resolve("{file}").path)
val x = Tensor.fromBlob(input, longArrayOf({shape}))
val y = module.forward(EValue.from(x))[0].toTensor().dataAsFloatArray
```""",
    ("ios", "tflite"): """LiteRT / TensorFlow Lite (Swift, `TensorFlowLiteSwift` pod):
```swift
let interpreter = try Interpreter(modelPath: Bundle.main.path(forResource: "{stem}", ofType: "tflite")!)
try interpreter.allocateTensors()
try interpreter.copy(inputData, toInputAt: 0)     // int8 inputs: quantize first (see Inputs)
try interpreter.invoke(); let y = try interpreter.output(at: 0)
```""",
    ("ios", "aimodel"): """Core AI (Swift, `import CoreAI`, iOS/macOS {min_os}; add the `.aimodel` folder to the app target):
```swift
let url = Bundle.main.url(forResource: "{stem}", withExtension: "aimodel")!
let model = try await AIModel(contentsOf: url)          // specializes for this device on first load (cached)
guard let main = try model.loadFunction(named: "main") else {{ fatalError("no function main") }}
let x = NDArray(scalars: input as [{scalar}], shape: [{shape}])   // {scalar} input: see Inputs
var outputs = try await main.run(inputs: ["{input}": x])
let y = outputs.remove("{output}")?.ndArray             // an NDArray of {out_scalar}
```
API names as in Apple's Core AI documentation (`AIModel(contentsOf:options:)`, `loadFunction(named:)`,
`NDArray(scalars:shape:)`, `run(inputs:states:outputViews:)`, `Outputs.remove(_:)`,
`InferenceValue.ndArray`); not compiled here (no Xcode on Linux): unverified Swift.""",
    ("ios", "pte"): """ExecuTorch (Swift package `executorch`, link the `backend_xnnpack` and `kernels_optimized` products):
```swift
let module = Module(filePath: Bundle.main.path(forResource: "{stem}", ofType: "pte")!)
let y = try module.forward(Tensor<Float>(input, shape: [{shape}]))
```""",
}


def coreml_readme(offered: list[dict]) -> str:
    lines = ["", "## Core ML candidates (not verified on this host)", "",
             "Core ML runs only on Apple devices, so these were exported and checked as files (structure, "
             "deployment target, precision, delegation) but never run here: verify their outputs on a device "
             "before shipping. `manifest.json` `unverified_candidates` lists what was checked.", ""]
    for c in offered:
        lines.append(f"- `{c['file']}` ({c['export_path']}, {c['quantization']}, {c['bytes'] / 1024:.1f} KiB"
                     + (f", needs {c['minimum_deployment_target']}" if c.get("minimum_deployment_target") else "")
                     + (f"; CPU kernels to link: {', '.join(c['cpu_operators'])}" if c.get("cpu_operators") else "")
                     + ")")
    return "\n".join(lines) + "\n"


def readme(platform: str, man: dict) -> str:
    a = man["artifact"]
    fname = a["file"]
    shape = ", ".join(str(d) for d in (man["inputs"][0]["shape"] if man["inputs"] else []))
    swift = {"float16": "Float16", "float32": "Float", "int32": "Int32"}
    first_in, first_out = (man["inputs"] or [{}])[0], (man["outputs"] or [{}])[0]
    load = _LOAD[(platform, a["format"])].format(
        file=fname, stem=Path(fname).stem, shape=shape,
        min_os=man["runtime"]["minimum"].get("compatibility_version", ""),
        scalar=swift.get(first_in.get("dtype", ""), "Float"),
        out_scalar=swift.get(first_out.get("dtype", ""), "Float"),
        input=first_in.get("name", "input"), output=first_out.get("name", "output"))
    rows = []
    for t in man["inputs"]:
        q = t.get("quantization")
        feed = (f"quantize: q = clip(round(x / {q['scale']:.6g}) {q['zero_point']:+d}, -128, 127)" if q
                else f"{t['dtype']} as is")
        rows.append(f"| {t['name']} | {t['shape']} | {t['dtype']} | {t.get('layout', '')} | {feed} |")
    outs = []
    for t in man["outputs"]:
        q = t.get("quantization")
        outs.append(f"| {t['name']} | {t['shape']} | {t['dtype']} | "
                    + (f"dequantize: x = (q {-q['zero_point']:+d}) * {q['scale']:.6g}" if q else "as is") + " |")
    rt = man["runtime"]
    minimum = rt["minimum"]
    if a["format"] == "tflite":
        need = (f"LiteRT / TFLite runtime >= {minimum.get('min_runtime_version') or '(not recorded)'}; operators: "
                + ", ".join(f"{o['op']} v{o['version']}" for o in minimum.get("operators", [])))
    elif a["format"] == "aimodel":
        share = minimum.get("compressed_weight_share")
        need = (f"Core AI, {minimum.get('minimum_os') or 'minimum OS not recorded'} (the framework ships with the OS: "
                f"nothing to link); inputs and outputs are {minimum.get('io_dtype', 'float32')}"
                + (f"; {share:.0%} of the weight bytes compressed ({minimum['compression'].get('preset', '')})"
                   if share else "")
                + ". Verified here with Core AI's Linux CPU runtime (coreai-core "
                f"{minimum.get('coreai_core_version')}); on the device Core AI may run it on the Neural Engine or GPU, which this host has not checked")
    else:
        need = (f"ExecuTorch {minimum.get('executorch_version')}; delegates: {', '.join(minimum.get('delegates') or ['none'])}; "
                f"operators outside the delegate: {', '.join(minimum.get('operators') or ['none'])} "
                f"(selective build: `{minimum.get('selective_build')}`)")
    mm = rt.get("measured_minimum") or {}
    need += (f".\nOn released runtimes it {mm['sentence']}" if mm.get("measured") else
             f".\nReleased runtimes: {mm.get('reason', 'not measured')}")
    if mm.get("declared_but_fails_on"):
        need += (f".\n**Warning**: the file declares min_runtime_version {mm['declared_min_runtime_version']}, but "
                 + ", ".join(r["label"] for r in mm["declared_but_fails_on"]) + " cannot run it")
    loads = "; ".join(f"{k} {v['version']}: {'loads' if v['loads'] else 'does NOT load it'}"
                      + (f" ({v['error']})" if v.get("error") and not v["loads"] else "")
                      for k, v in rt["loads_here"].items())
    m = man["measured"]
    figures = "; ".join(f"{p}: p50 {v['p50']:.3f} ms, p90 {v['p90']:.3f} ms, peak RSS {v['peak_rss_mb']:.0f} MB"
                        for p, v in m["profiles"].items() if v.get("p50") is not None)
    return f"""# {man['name']} for {platform}

Ship `{fname}` ({a['format']}, {a['quantization']}, {a['bytes']} bytes, sha256 `{a['sha256'][:16]}...`).
Made from `{man['source']['path']}` by the export path `{a['export_path']}`. Why this file: {man['choice']['reason']}

## Load it
{load}

## Inputs (one sample per call, batch 1)
| name | shape | dtype | layout | how to feed |
|---|---|---|---|---|
{chr(10).join(rows)}

## Outputs
| name | shape | dtype | |
|---|---|---|---|
{chr(10).join(outs)}

## What the app needs
{need}.
Checked here: {loads}.

## How sure we are
Parity vs the source model on {man['samples']['count']} samples ({man['calibration']} calibration):
{man['parity']['status']}; SQNR {m.get('sqnr_db', float('nan')):.1f} dB, max abs diff {m.get('max_abs_diff', float('nan')):.3g}
{f"top-1 agreement {m['top1_agreement']:.3f}" if 'top1_agreement' in m else ''}{f", accuracy {m['accuracy']:.4f} (source model {m.get('reference_accuracy', float('nan')):.4f})" if 'accuracy' in m else ''}.
Host timings (not a phone): {figures}. Everything else: `manifest.json` (schema: docs/manifest.md in mobilebench).
"""
