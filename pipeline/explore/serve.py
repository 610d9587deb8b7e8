"""Open one artifact in Model Explorer with its overlays (per-operator time, per-layer int8 error).

    make explore MODEL=digits_cnn ARTIFACT=keras__tflite_int8            # installs the viewer if missing
    .venv/bin/python -m pipeline explore digits_cnn keras__tflite_int8 --no-open --port 8090

The overlays are written from the records first (`nodedata.write`, as `report` does); the viewer is
the optional `ai-edge-model-explorer` (requirements-explorer.txt), a local web server: `--no-open`
prints its URL instead of opening a browser (headless machines, or a browser elsewhere through an
ssh tunnel).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.artifact import ArtifactId, resolve
from pipeline.explore import nodedata
from pipeline.schema import Record

INSTALL = ".venv/bin/pip install -r requirements-explorer.txt"


def overlays_for(records: list[Record], results: Path, aid: ArtifactId) -> list[nodedata.Overlay]:
    """Write every overlay; this artifact's, or a ValueError saying why it has none (CLI: exit 2)."""
    built = nodedata.write(records, results)
    mine = [o for o in built.overlays if o.aid == aid]
    if mine:
        return mine
    known = sorted({o.aid.stem for o in built.overlays if o.aid.model == aid.model})
    why = built.not_shown.get(aid.label, "no bench record with an op profile and no quant-debug table for it")
    raise ValueError(f"explore {aid.label}: no overlay ({why}); with overlays: {', '.join(known) or 'none'}")


def serve(overlays: list[nodedata.Overlay], results: Path, host: str, port: int, open_browser: bool) -> int:
    """Start Model Explorer on the artifact with each overlay file (blocks until Ctrl-C)."""
    try:
        import model_explorer
    except ImportError:
        raise ValueError(f"explore: ai-edge-model-explorer is not installed: {INSTALL} "
                         "(or `make explore`, which does it)") from None
    cfg = model_explorer.config().add_model_from_path(str(resolve(overlays[0].artifact)))
    for o in overlays:
        cfg.add_node_data_from_path(str(o.file(results).resolve()))
    model_explorer.visualize_from_config(cfg, host=host, port=port, no_open_in_browser=not open_browser)
    return 0
