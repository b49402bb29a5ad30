"""A Podium handler for the log tests: prints `lines` lines `<tag> line <i>` (and one to
stderr), then returns. Run as `python -m podium.worker tests/logs/handlers/chatty.py:handler`.
"""

from __future__ import annotations

import sys
from typing import Any


def handler(job: dict[str, Any]) -> dict[str, Any]:
    inp = job["input"]
    tag = inp["tag"]
    for i in range(int(inp.get("lines", 3))):
        print(f"{tag} line {i}")
    print(f"{tag} on stderr", file=sys.stderr)
    return {"tag": tag}
