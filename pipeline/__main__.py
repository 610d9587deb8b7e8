"""`python -m pipeline --help`"""
import os
import sys

from pipeline.cli import main

if __name__ == "__main__":
    rc = main()
    if rc == 130:
        # A KeyboardInterrupt that passed through string-compiled code (dataclass creation, torch.fx
        # codegen: anything exec'd from a string) leaves CPython flagged "unhandled Ctrl-C" even though
        # main() caught it, and `python -m` then exits by re-raising SIGINT (-2) instead of our 130.
        # Everything is written atomically and closed by now: flush and leave with the code we chose.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)
