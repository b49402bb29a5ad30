"""The snapshot point: where a worker pauses so that its gateway can checkpoint it
(CRIU) once its handler is built, before it has taken a job or told anyone its identity
(docs/snapshots.md). The worker's half of the handshake:

    PODIUM_SNAPSHOT_FD=3   set by the fleet for an endpoint with flashboot; fd 3 is a pipe
                           to the fleet (the control pipe), stdin a pipe from it

    0. before it builds its handler, the worker says it speaks the protocol:
         {"hello": "podium"} on the control pipe (`announce`)
    1. the handler is built (its model loaded, an optional warm-up done)
    2. the worker writes one JSON line on the control pipe and closes it:
         {"pause": true, "pid": <its pid on the host>, "files": [<module files>]}
       or, when it cannot be checkpointed, {"pause": false, "why": "..."} and runs on
    3. it blocks reading one JSON line from stdin. Meanwhile the fleet dumps it (the
       process keeps running), then writes {"restored": false} and closes stdin.
       A copy restored from the image wakes in the same read, on a new pipe, and reads
       {"restored": true, "env": {<its own identity>}}: its worker id, URLs, log marker,
       HOME (a value null removes the variable)
    4. the identity goes into os.environ, the random generators are reseeded, and the
       caller builds its WorkerConfig from the environment now: every copy is a new worker

Checkpointable means: the PID namespace's first process (`unshare --pid --fork`), its own
session (`setsid`), no terminal. A program that does not know the protocol (the runpod
SDK's workers) never writes on the control pipe: when it ends, the fleet knows it for one
that cannot be snapshotted and starts that endpoint version's workers normally from then on.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["SNAPSHOT_FD_ENV", "Resumed", "announce", "snapshot_point"]

SNAPSHOT_FD_ENV = "PODIUM_SNAPSHOT_FD"
IDENTITY_MAX_BYTES = 1 << 20  # the line the fleet writes on stdin


@dataclass(frozen=True, slots=True)
class Resumed:
    """What the snapshot point learnt: `restored` (this process is a copy restored from an
    image) and the identity it applied."""

    restored: bool
    env: dict[str, str | None]


def _why_not() -> str | None:
    """Why this process cannot be checkpointed and restored as copies, or None."""
    if os.getpid() != 1:
        return "not the first process of its own PID namespace (unshare --pid --fork)"
    if os.getsid(0) != os.getpid():
        return "not the leader of its own session (setsid)"
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return f"fd {fd} is a terminal"
    return None


def _host_pid() -> int:
    """This process's pid in the host's PID namespace: /proc (the host's, not remounted)
    names it; inside a new namespace os.getpid() is 1."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return os.getpid()


def _module_files() -> list[str]:
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.isabs(path):
            files.add(path)
    return sorted(files)


def _reseed() -> None:
    """Fresh random state: every copy of one image would otherwise draw the same numbers."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.seed()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_announced: set[int] = set()  # control fds this process said hello on


def announce(environ: Any = None) -> None:
    """Say on the control pipe (if the fleet gave one) that this worker will stop at the
    snapshot point: before the handler is built, so that a worker that crashes while
    building is not taken for one that cannot be snapshotted."""
    environ = os.environ if environ is None else environ
    try:
        fd = int(environ.get(SNAPSHOT_FD_ENV, ""))
    except ValueError:
        return
    with contextlib.suppress(OSError):
        _hello(fd)


def _hello(fd: int) -> None:
    """The first line on the control pipe, once."""
    if fd not in _announced:
        _announced.add(fd)
        _write_all(fd, b'{"hello": "podium"}\n')


def snapshot_point(environ: Any = None) -> Resumed | None:
    """Pause for a checkpoint when the fleet asked for it (PODIUM_SNAPSHOT_FD); apply the
    identity it gives. None when no snapshot was asked for or this process cannot be
    checkpointed (it runs on as it is)."""
    environ = os.environ if environ is None else environ
    raw = environ.pop(SNAPSHOT_FD_ENV, None)
    if raw is None:
        return None
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError):
        return None
    why = _why_not()
    try:
        _hello(fd)
        if why is not None:
            _write_all(fd, (json.dumps({"pause": False, "why": why}) + "\n").encode())
            return None
        line = {"pause": True, "pid": _host_pid(), "files": _module_files()}
        _write_all(fd, (json.dumps(line) + "\n").encode())
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    # Paused: the fleet dumps this process now. The read below is where every copy wakes.
    try:
        answer = sys.stdin.buffer.readline(IDENTITY_MAX_BYTES)
    except (OSError, ValueError):
        answer = b""
    with contextlib.suppress(OSError):  # stdin is done with: no pipe stays open
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    try:
        told = json.loads(answer) if answer.strip() else {}
    except ValueError:
        told = {}
    if not isinstance(told, dict):
        told = {}
    given = told.get("env")
    env: dict[str, str | None] = given if isinstance(given, dict) else {}
    for name, value in env.items():
        if value is None:
            environ.pop(str(name), None)
        else:
            environ[str(name)] = str(value)
    _reseed()
    return Resumed(bool(told.get("restored")), dict(env))
