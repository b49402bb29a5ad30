"""One worker process on this machine: its own process group, its stdout and stderr in one
pipe (`stdout`, read by a LogShipper: podium.logs) or in a file, killed when the process
that started it dies (Linux). Used by the local backend (fleet/local.py, a pipe) and, on
each Ray node, by the slot actor (fleet/rayslot.py, a file until it ships its lines)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

__all__ = ["DIE_WITH_PARENT", "Process", "Spawn", "spawn_process"]


class Process(Protocol):
    @property
    def pid(self) -> int | None:
        """None: not started yet (a container whose image is being pulled)."""
        ...

    stdout: IO[bytes] | None  # its stdout and stderr in one pipe (None: in a file)
    note: str | None  # what it waits for before it runs (shown while it initializes)

    def poll(self) -> int | None: ...
    def terminate(self) -> None:
        """SIGTERM to the worker (a drain)."""
        ...

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group."""
        ...


Spawn = Callable[[Sequence[str], Mapping[str, str], Path | None], Process]


class _Popen:
    """A worker process in its own process group, killed if its parent dies (Linux)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_file: Path | None) -> None:
        with contextlib.ExitStack() as stack:
            out = subprocess.PIPE if log_file is None else stack.enter_context(log_file.open("ab"))
            self._p = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=DIE_WITH_PARENT,  # one prctl call (see _parent_death_signal)
            )
        self.pid: int | None = self._p.pid
        self.stdout: IO[bytes] | None = self._p.stdout
        self.note: str | None = None
        self._swept = False

    def poll(self) -> int | None:
        code = self._p.poll()
        if code is not None and not self._swept:
            # Leftovers of the group (a shell's children, an SDK's ping process) go too.
            self._swept = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._p.pid, signal.SIGKILL)
        return code

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._p.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._p.pid, signal.SIGKILL)


def _parent_death_signal() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return set_signal


DIE_WITH_PARENT = _parent_death_signal()


def spawn_process(
    argv: Sequence[str], env: Mapping[str, str], log_file: Path | None = None
) -> Process:
    """`log_file` None: the output goes to the pipe `stdout`."""
    return _Popen(argv, env, log_file)
