"""Container workers on this host: the engine's CLI (Docker or Podman), image pulls, and a
worker's container as a fleet.process.Process, so that the local backend and the Ray slot
actor run containers exactly as they run processes.

    find_engine     PODIUM_CONTAINER_ENGINE (docker | podman | a path), else the first of
                    podman, docker on PATH; its version, once
    ImagePulls      one pull per image per host at a time (workers of one endpoint wait for
                    the same pull); an image already here is used as it is
    spawn_container a worker: pull (if missing), then `ENGINE run` attached, its output in
                    one pipe like a process's; SIGTERM and SIGKILL go to the container
                    through the engine (`kill`), and it is removed when it ends
    remove_owned    the containers an installation left behind (a gateway killed with -9
                    leaves them running): removed before the first worker starts

Commands are the argv lists of endpoints/containers.py. Secrets never go on a command line:
the container's variables are in a 0600 env file beside the worker's home, removed once the
container has started (and in any case when it ends); registry credentials in a 0600 auth
file for the pull only. Engine commands that only change state (kill, rm) are started and
reaped by a thread of their own: nothing here waits on the engine on the event loop but
`find_engine` and `remove_owned`, which callers run in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from podium.endpoints.containers import (
    ENGINES,
    LABEL_ENDPOINT,
    LABEL_OWNER,
    LABEL_SLOT,
    LABEL_WORKER,
    ContainerSpec,
    EngineKind,
    kill_argv,
    list_argv,
    pull_argv,
    remove_argv,
    run_argv,
)
from podium.fleet.process import DIE_WITH_PARENT

__all__ = [
    "EXIT_NOT_STARTED",
    "ContainerHost",
    "ContainerProcess",
    "ContainerRun",
    "Engine",
    "ImagePulls",
    "SpawnContainer",
    "find_engine",
    "remove_owned",
    "spawn_container",
]

log = logging.getLogger("podium.fleet")

EXIT_NOT_STARTED = 125  # the engine's own code: the container could not be run (or pulled)
ENV_FILE_KEEP_S = 10.0  # the env file is removed this long after `run` starts, or at exit
PULL_TIMEOUT_S = 3600.0
_PULL_LINES = 200  # of a pull's output, kept for the workers that wait for it


@dataclass(frozen=True, slots=True)
class Engine:
    kind: EngineKind
    path: str
    version: str

    def describe(self) -> str:
        return f"{self.kind} {self.version}".strip()


def find_engine(choice: str | None = None, env: Mapping[str, str] | None = None) -> Engine | None:
    """The container engine workers of images run on (blocking: a `--version` call)."""
    env = dict(os.environ if env is None else env)
    for candidate in [choice] if choice else list(ENGINES):
        path = shutil.which(candidate, path=env.get("PATH"))
        if path is None:
            continue
        kind: EngineKind = "docker" if "docker" in Path(path).name else "podman"
        try:
            done = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10, env=env
            )
        except (OSError, subprocess.SubprocessError):
            continue
        version = done.stdout.strip().rsplit(" ", 1)[-1].rstrip(",") if done.stdout else ""
        return Engine(kind, path, version)
    return None


def _auth_file(directory: Path, registry: str, creds: tuple[str, str]) -> Path:
    """A 0600 credentials file for one pull: Podman's auth.json, or Docker's config dir."""
    token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    doc = json.dumps({"auths": {registry: {"auth": token}}})
    fd = os.open(directory / "config.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(doc)
    return directory / "config.json"


def _registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@dataclass
class Pull:
    """One pull of one image on this host (a thread runs it)."""

    image: str
    lines: list[str] = field(default_factory=list)
    ok: bool | None = None  # None: still going
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.ok is not None


class ImagePulls:
    """Pulls on this host: at most one per image at a time; a failed pull is tried again
    by the next worker that needs the image (after its restart backoff)."""

    def __init__(self, engine: Engine, env: Mapping[str, str]) -> None:
        self.engine = engine
        self.env = dict(env)
        self._lock = threading.Lock()
        self._pulls: dict[str, Pull] = {}

    def get(self, image: str, creds: tuple[str, str] | None) -> Pull:
        with self._lock:
            pull = self._pulls.get(image)
            if pull is not None and (pull.ok is None or pull.ok):
                return pull
            pull = self._pulls[image] = Pull(image)
        threading.Thread(
            target=self._run, args=(pull, creds), name=f"pull-{image[:40]}", daemon=True
        ).start()
        return pull

    def _run(self, pull: Pull, creds: tuple[str, str] | None) -> None:
        e = self.engine
        exists = [e.path, "image", "inspect", "--format", "{{.Id}}", pull.image]
        try:
            here = subprocess.run(exists, capture_output=True, env=self.env, timeout=60)
            if here.returncode == 0:
                pull.ok = True
                return
            with tempfile.TemporaryDirectory(prefix="podium-pull-") as tmp:
                auth = None
                if creds is not None:
                    auth_file = _auth_file(Path(tmp), _registry_of(pull.image), creds)
                    auth = str(auth_file if e.kind == "podman" else auth_file.parent)
                proc = subprocess.Popen(
                    pull_argv(e.path, e.kind, pull.image, auth),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                )
                assert proc.stdout is not None
                with proc.stdout:
                    for raw in proc.stdout:
                        line = raw.decode("utf-8", "replace").rstrip()
                        if line:
                            pull.lines.append(line)
                            del pull.lines[:-_PULL_LINES]
                code = proc.wait(timeout=PULL_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            pull.error, pull.ok = f"{type(exc).__name__}: {exc}", False
            return
        if code == 0:
            pull.ok = True
            return
        last = next((ln for ln in reversed(pull.lines) if ln.strip()), f"exit code {code}")
        pull.error, pull.ok = last, False


@dataclass(frozen=True, slots=True)
class ContainerHost:
    """What a backend needs to run image workers on a host."""

    engine_choice: str | None  # PODIUM_CONTAINER_ENGINE (None: podman, else docker)
    owner: str  # LABEL_OWNER: one per installation (its store)
    volume_root: str  # network volumes live in <root>/<volume id>
    # registry id -> (username, password); None when this host does not have it
    credentials: Callable[[str], tuple[str, str] | None]


@dataclass(frozen=True, slots=True)
class ContainerRun:
    """Everything one container worker needs, resolved on the host that runs it."""

    spec: ContainerSpec
    name: str  # the container's name (unique per start)
    owner: str  # LABEL_OWNER: the installation
    endpoint_id: str
    worker_id: str
    slot: int
    volume_dir: str | None = None
    creds: tuple[str, str] | None = None  # registry (username, password) for the pull


class ContainerProcess:
    """A container worker as a fleet.process.Process: `stdout` is one pipe that carries
    the pull's news, then the container's output; `note` says what it waits for."""

    def __init__(
        self,
        engine: Engine,
        run: ContainerRun,
        env: Mapping[str, str],
        engine_env: Mapping[str, str],
        gpus: Sequence[int],
        pulls: ImagePulls,
        env_dir: Path,
    ) -> None:
        self.engine, self.run, self.gpus = engine, run, tuple(gpus)
        # The engine passes this worker's GPUs only, numbered from 0 inside the container:
        # the host's indices (CUDA_VISIBLE_DEVICES=1,3) would name devices it does not have.
        self._vars = {**env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(len(self.gpus))))}
        self._engine_env = dict(engine_env)
        self._env_dir = env_dir
        read_fd, write_fd = os.pipe()
        self._write_fd: int | None = write_fd
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb")
        self.pid: int | None = None
        self.note: str | None = f"pulling image {run.spec.image}"
        self._pull = pulls.get(run.spec.image, run.creds)
        self._pull_seen = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._env_file: Path | None = None
        self._started_at: float | None = None
        self._code: int | None = None
        self._say(f"--- podium: image {run.spec.image} on {engine.describe()} ---")

    # --- the pipe ---------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._write_fd, (text.rstrip("\n") + "\n").encode())

    def _close_pipe(self) -> None:
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
            self._write_fd = None

    # --- Process ------------------------------------------------------------------------

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        if self._proc is None:
            return self._advance_pull()
        if self._env_file is not None and time.monotonic() - (self._started_at or 0) > (
            ENV_FILE_KEEP_S
        ):
            self._drop_env_file()
        code = self._proc.poll()
        if code is not None:
            self._code = code
            self._drop_env_file()
            self._engine(remove_argv(self.engine.path, [self.run.name]))  # if --rm did not
        return code

    def _advance_pull(self) -> int | None:
        pull = self._pull
        for line in pull.lines[self._pull_seen :]:
            self._say(line)
        self._pull_seen = len(pull.lines)
        if not pull.done:
            return None
        if not pull.ok:
            self._say(f"--- podium: cannot pull image {self.run.spec.image}: {pull.error} ---")
            return self._end(EXIT_NOT_STARTED)
        self.note = None
        return self._start()

    def _start(self) -> int | None:
        run = self.run
        self._env_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._env_file = self._env_dir / f"{run.name}.env"
        lines = [f"{k}={v}" for k, v in sorted(self._vars.items()) if "\n" not in v]
        fd = os.open(self._env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        argv = run_argv(
            self.engine.path,
            self.engine.kind,
            run.spec,
            name=run.name,
            env_file=str(self._env_file),
            gpus=self.gpus,
            volume_dir=run.volume_dir,
            labels={
                LABEL_OWNER: run.owner,
                LABEL_ENDPOINT: run.endpoint_id,
                LABEL_WORKER: run.worker_id,
                LABEL_SLOT: str(run.slot),
            },
        )
        try:
            self._proc = subprocess.Popen(
                argv,
                env=self._engine_env,
                stdin=subprocess.DEVNULL,
                stdout=self._write_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=DIE_WITH_PARENT,
            )
        except OSError as exc:
            self._say(f"--- podium: cannot run {self.engine.path}: {exc} ---")
            return self._end(EXIT_NOT_STARTED)
        self.pid = self._proc.pid
        self._started_at = time.monotonic()
        self._close_pipe()  # the engine's CLI holds the write end now: its exit is the EOF
        return None

    def _end(self, code: int) -> int:
        self._code = code
        self._drop_env_file()
        self._close_pipe()
        return code

    def terminate(self) -> None:
        """A drain: SIGTERM to the worker in the container (or no start, while pulling)."""
        if self._proc is None:
            if self._code is None:
                self._say("--- podium: stopped before its image was pulled ---")
                self._end(0)
            return
        self._engine(kill_argv(self.engine.path, self.run.name, "TERM"))

    def kill(self) -> None:
        if self._proc is None:
            if self._code is None:
                self._end(-int(signal.SIGKILL))
            return
        self._engine(kill_argv(self.engine.path, self.run.name, "KILL"))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    # --- helpers ------------------------------------------------------------------------

    def _engine(self, argv: list[str]) -> None:
        """An engine command that changes state: started now, reaped by a thread (the
        worker may never be polled again once it has ended)."""
        try:
            helper = subprocess.Popen(
                argv,
                env=self._engine_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("cannot run %s: %s", argv[:2], exc)
            return
        threading.Thread(target=helper.wait, name="engine-reap", daemon=True).start()

    def _drop_env_file(self) -> None:
        if self._env_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._env_file.unlink()
            self._env_file = None


SpawnContainer = Callable[
    [Engine, ContainerRun, Mapping[str, str], Mapping[str, str], Sequence[int], "ImagePulls", Path],
    "ContainerProcess",
]


def spawn_container(
    engine: Engine,
    run: ContainerRun,
    env: Mapping[str, str],
    engine_env: Mapping[str, str],
    gpus: Sequence[int],
    pulls: ImagePulls,
    env_dir: Path,
) -> ContainerProcess:
    """One container worker: `env` is what the container gets (its RUNPOD_* variables,
    the endpoint's env, CUDA_VISIBLE_DEVICES); `engine_env` what the engine's CLI runs
    with (the host's PATH, CONTAINERS_CONF, ...): the two never mix."""
    return ContainerProcess(engine, run, env, engine_env, gpus, pulls, env_dir)


def remove_owned(engine: Engine, owner: str, env: Mapping[str, str]) -> list[str]:
    """Remove the containers `owner` left behind (blocking: run it in a thread); their
    names."""
    try:
        found = subprocess.run(
            list_argv(engine.path, owner), capture_output=True, text=True, timeout=60, env=env
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("cannot list the containers of %s: %s", owner, exc)
        return []
    names = [n for n in found.stdout.split() if n]
    if names:
        log.warning("removing %d container(s) left from before: %s", len(names), names)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                remove_argv(engine.path, names), capture_output=True, timeout=120, env=env
            )
    return names
