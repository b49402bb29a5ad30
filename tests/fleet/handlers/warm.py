"""A worker with model-like state for the snapshot tests (tests/e2e/test_snapshots.py):
its module builds a large table at import (what a model load is to a real worker) and
records which process built it; each job reports who ran it and a fresh random draw."""

import hashlib
import os
import random

TABLE = [i * i % 1_000_003 for i in range(3_000_000)]  # ~100 MB resident: the "weights"
DIGEST = hashlib.sha256(repr(TABLE[-1000:]).encode()).hexdigest()[:16]


def handler(job):
    xs = job["input"].get("xs", [])
    return {
        "worker": os.environ.get("RUNPOD_POD_ID"),
        "home": os.environ.get("HOME"),
        "sum": sum(TABLE[x] for x in xs),
        "digest": DIGEST,
        "draw": random.random(),
    }
