"""A worker for the protocol tests only (`pipeline/workers.py`): it dies natively (SIGABRT) on items
marked "crash", hangs on items marked "hang" (after writing its pid to the item's "pid_file")."""
import os
import sys
import time

from pipeline import workers


def one(item: dict, params: dict) -> dict:
    if item.get("crash"):
        os.abort()
    if item.get("hang"):
        if item.get("pid_file"):
            with open(item["pid_file"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(item["pid_file"] + ".tmp", item["pid_file"])
        time.sleep(600)
    if item.get("raise"):
        raise ValueError("bad item\nsecond line")
    return {"status": "ok", "value": item["id"] * 2, **params}


if __name__ == "__main__":
    sys.exit(workers.serve(one))
