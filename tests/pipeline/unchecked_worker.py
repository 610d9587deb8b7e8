"""A worker for the sandbox tests only: it opens a hostile file the way a library would, with NO pre-check
(`pipeline/filecheck/` is not called), to show what the OS sandbox alone stops.

    item {"do": "savedmodel", "path": SM}    # tf.saved_model.load + call serving_default (its WriteFile runs)
    item {"do": "write", "path": P}          # open(P, "w")
    item {"do": "read", "path": P}           # open(P).read()
    item {"do": "connect"}                   # a TCP connection out
    item {"do": "env"}                       # the environment it sees
"""
import os
import socket
import sys

from pipeline import workers


def one(item: dict, params: dict) -> dict:
    do = item["do"]
    if do == "savedmodel":
        import tensorflow as tf
        fn = tf.saved_model.load(item["path"]).signatures["serving_default"]
        out = fn(x=tf.ones([1, 4]))
        return {"status": "ok", "y": float(out["y"].numpy().sum())}
    if do == "write":
        with open(item["path"], "w") as f:
            f.write("x")
        return {"status": "ok"}
    if do == "read":
        with open(item["path"]) as f:
            return {"status": "ok", "text": f.read(100)}
    if do == "connect":
        socket.create_connection(("1.1.1.1", 53), timeout=3).close()
        return {"status": "ok"}
    if do == "env":
        return {"status": "ok", "env": dict(os.environ)}
    if do == "crash":
        os.abort()
    raise ValueError(f"unknown item {do!r}")


if __name__ == "__main__":
    sys.exit(workers.serve(one))
