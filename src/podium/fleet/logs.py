"""Worker logs: DATA_DIR/logs/<endpoint>/<worker>.log, one file per worker (its stdout and
stderr; a restart appends, with a header line), read back by `GET /v1/endpoints/{id}/logs`
and `podium logs`."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["log_dir", "log_path", "rotate_if_large", "tail", "worker_logs"]

_TAIL_CHUNK = 64 * 1024


def log_dir(data_dir: Path, endpoint_id: str) -> Path:
    return data_dir / "logs" / endpoint_id


def log_path(data_dir: Path, endpoint_id: str, worker_id: str) -> Path:
    return log_dir(data_dir, endpoint_id) / f"{worker_id}.log"


def rotate_if_large(path: Path, max_bytes: int) -> None:
    """Keep one older generation (`.log.1`) once a log grows past max_bytes."""
    try:
        if path.stat().st_size > max_bytes:
            os.replace(path, path.with_suffix(".log.1"))
    except FileNotFoundError:
        pass


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a file, reading only as much of its end as needed."""
    if lines <= 0:
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) + ("\n" if text.endswith("\n") else "")


def worker_logs(data_dir: Path, endpoint_id: str) -> list[Path]:
    """The endpoint's worker logs, oldest first (by last write)."""
    folder = log_dir(data_dir, endpoint_id)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.log"), key=lambda p: (p.stat().st_mtime, p.name))
