"""A worker for the protocol tests only (`pipeline/workers.py`): it dies natively (SIGABRT) on items
marked "crash", hangs on items marked "hang" (after writing its pid to the item's "pid_file"), says the
item's "say" line, and tells its pid when the item asks ("pid")."""
import os
import sys
import time

from pipeline import workers


def one(item: dict, params: dict, say) -> dict:
    if item.get("say"):
        say(item["say"])
    if item.get("crash"):
        os.abort()
    if item.get("hang"):
        if item.get("pid_file"):
            with open(item["pid_file"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(item["pid_file"] + ".tmp", item["pid_file"])
        try:
            time.sleep(600)
        except KeyboardInterrupt:     # an interrupted parent's SIGINT (Job.stop_grace_s): clean up, go
            if item.get("pid_file"):
                open(item["pid_file"] + ".interrupted", "w").close()
            raise
    if item.get("raise"):
        raise ValueError("bad item\nsecond line")
    return {"status": "ok", "value": item["id"] * 2, **params, **({"pid": os.getpid()} if item.get("pid") else {})}


if __name__ == "__main__":
    sys.exit(workers.serve(one, say=True))
