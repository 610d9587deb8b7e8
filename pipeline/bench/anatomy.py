"""What the bytes of a .tflite file are: constant tensor data vs quantization parameters vs the rest.

    .venv/bin/python -c "from pipeline import anatomy; print(anatomy.of('artifacts/digits_cnn/keras__tflite_int8.tflite'))"

Why it matters: an int8 file is 4x smaller than its fp32 twin only if the weights dominate it. Every
per-channel quantized tensor also stores, per output channel, a float32 scale and an int64 zero point
(the schema's types: 12 bytes), and its int32 bias gets the same again; a depthwise 3x3 channel has 9
int8 weights beside ~28 bytes of bias and parameters. So thin layers shrink far less than 4x. The
report reads these figures beside the size ratio.
"""
from __future__ import annotations

from pathlib import Path

_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8", 7: "int16"}


def of(path: Path | str, fmt: str = "") -> dict[str, float]:
    """Byte figures for the record's metrics ({} for formats we do not take apart)."""
    path = Path(path)
    if (fmt or path.suffix.lstrip(".")) != "tflite":
        return {}
    try:
        from ai_edge_litert.tools import flatbuffer_utils as fb
        model = fb.read_model(str(path))
    except Exception:  # noqa: BLE001 - anatomy is an extra figure; an unreadable file is caught elsewhere
        return {}
    data_by_type: dict[str, int] = {}
    qbytes = 0
    channels = 0
    seen: set[int] = set()
    for sg in model.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            if q is not None:
                n_scale = len(q.scale) if q.scale is not None else 0
                qbytes += 4 * n_scale + 8 * (len(q.zeroPoint) if q.zeroPoint is not None else 0)
                if n_scale > 1:
                    channels += n_scale
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            if buf is not None and buf.data is not None and t.buffer not in seen:
                seen.add(t.buffer)
                name = _TYPE_NAMES.get(t.type, str(t.type))
                data_by_type[name] = data_by_type.get(name, 0) + len(buf.data)
    data = sum(data_by_type.values())
    out = {"anatomy_constant_bytes": float(data), "anatomy_quant_param_bytes": float(qbytes),
           "anatomy_per_channel_scales": float(channels),
           "anatomy_other_bytes": float(path.stat().st_size - data - qbytes)}
    out.update({f"anatomy_{k}_bytes": float(v) for k, v in data_by_type.items()})
    return out
