"""A worker for the batch-protocol test only: it dies natively (SIGABRT) on items marked "crash"."""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from probes.batch import Progress  # noqa: E402

job = json.loads(Path(sys.argv[1]).read_text())
progress = Progress(job["progress"])
for item in job["items"]:
    progress.start(item["id"])
    if item.get("crash"):
        os.abort()
    progress.done(item["id"], {"status": "ok", "value": item["id"] * 2})
