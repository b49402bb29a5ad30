"""A worker program for the backend contract tests (tests/fleet/test_backends.py): writes
its environment as JSON to argv[1], then either exits with argv[2] (after printing
argv[3], if given, to stderr) or waits for SIGTERM and exits 0 (a drain)."""

import json
import os
import signal
import sys
import time

with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump(dict(os.environ), fh)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if len(sys.argv) > 2:
    if len(sys.argv) > 3:
        print(sys.argv[3], file=sys.stderr, flush=True)
    sys.exit(int(sys.argv[2]))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
deadline = time.monotonic() + 120  # bounded: a test that forgets it ends it anyway
while time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(3)
