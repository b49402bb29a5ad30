"""Container images for the tests that run workers under podman, built here from nothing.

No container registry is reachable from the test machines, so nothing is pulled: the base
is a Debian bookworm root made by mmdebstrap and `podman import`ed, and the RunPod image is
built FROM it with `podman build` (pip reaches PyPI).

    from tests import images
    reason = images.unavailable()        # None, or a sentence: what is missing
    ref = images.runpod_image()          # localhost/podium-test-runpod:<tag>, built if missing
    ref = images.podium_image({"noop.py": text})   # this checkout's Podium, /handlers/noop.py
    env = {**os.environ, **images.engine_env()}   # for a process that runs podman

Each tag is a short hash of everything that defines its image (for the RunPod image that
includes the contents of `handlers/`, so editing a handler rebuilds it). An image whose tag
`podman image exists` already knows is never rebuilt: the first build takes a minute or
two, later runs none. Check-and-build holds an `fcntl.flock` lock, so test processes that
ask at the same time build once. Old tags are left behind; `podman rmi` them at will.
Progress goes to stderr; each step's full output to a log in `STATE_DIR`, and a failed step
raises RuntimeError with the log's tail.

Podman runs with the `containers.conf` written at `CONTAINERS_CONF` (written by the first
call of any function here): runc and cgroupfs (the system's libpod.conf names crun and
systemd), and default ulimits within the host's hard limits (podman's own default, nofile
1048576, makes runc fail with "error setting rlimits ... operation not permitted").
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "CONTAINERS_CONF",
    "base_image",
    "engine_env",
    "podium_image",
    "runpod_image",
    "unavailable",
]

# Bump to rebuild every image (change of what the tags mean, or of how images are made).
FORMAT_VERSION = 1

RUNPOD_VERSION = "1.12.0"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"

STATE_DIR = Path(tempfile.gettempdir()) / "podium-test-images"
CONTAINERS_CONF: Path = STATE_DIR / "containers.conf"
_CONF_TEXT = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

BASE_REPO = "localhost/podium-test-base"
RUNPOD_REPO = "localhost/podium-test-runpod"
PODIUM_REPO = "localhost/podium-test-podium"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The root filesystem of the base image; the target (a .tar path) is appended.
MMDEBSTRAP_ARGS = (
    "--variant=apt",
    "--include=python3,python3-venv,ca-certificates",
    "bookworm",
)

# {base} is the base image's reference; the build context holds the CA bundle and handlers/.
_CONTAINERFILE = """\
FROM {base}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PYTHONUNBUFFERED=1
RUN python3 -m venv /venv \\
 && /venv/bin/pip install -q --no-cache-dir --disable-pip-version-check runpod=={runpod}
COPY handlers/ /handlers/
CMD ["/venv/bin/python", "/handlers/echo.py"]
"""

# {base}: the base image; the context holds the CA bundle, wheel/ (this checkout's Podium)
# and handlers/ (the files the caller gives).
_PODIUM_CONTAINERFILE = """\
FROM {base}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PYTHONUNBUFFERED=1
COPY wheel/ /wheel/
RUN python3 -m venv /venv \\
 && /venv/bin/pip install -q --no-cache-dir --disable-pip-version-check /wheel/*.whl \\
 && rm -rf /wheel
COPY handlers/ /handlers/
"""

BUILD_TIMEOUT_S = 1800  # per step: generous, a slow mirror may take this long
_TAIL_LINES = 40


def _log(message: str) -> None:
    print(f"[podium test images] {message}", file=sys.stderr, flush=True)


def _ensure_conf() -> None:
    """Write `CONTAINERS_CONF` unless it already holds the expected text (atomic)."""
    with contextlib.suppress(OSError):
        if CONTAINERS_CONF.read_text() == _CONF_TEXT:
            return
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=STATE_DIR, prefix=".containers.conf.")
    with os.fdopen(fd, "w") as f:
        f.write(_CONF_TEXT)
    os.replace(tmp, CONTAINERS_CONF)


def engine_env() -> dict[str, str]:
    """The environment a process that runs podman needs (merge it over `os.environ`)."""
    _ensure_conf()
    return {"CONTAINERS_CONF": str(CONTAINERS_CONF)}


def _podman_env() -> dict[str, str]:
    return {**os.environ, **engine_env()}


def unavailable() -> str | None:
    """None if images can be built and run here; else one sentence saying what is missing."""
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        names = " ".join(missing)
        return f"{names} not found on PATH (on Debian: apt-get install {names})."
    if not HOST_CA_BUNDLE.is_file():
        return f"the host CA bundle {HOST_CA_BUNDLE} is missing (pip in the image needs it)."
    try:
        proc = subprocess.run(
            ["podman", "info"],
            env=_podman_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return f"`podman info` (CONTAINERS_CONF={CONTAINERS_CONF}) did not answer in 120 s."
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        return f"`podman info` (CONTAINERS_CONF={CONTAINERS_CONF}) failed: {last}"
    return None


def _short_hash(parts: Sequence[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        # Length-prefixed, so that no two different lists of parts hash alike.
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:12]


def _image_exists(ref: str) -> bool:
    proc = subprocess.run(
        ["podman", "image", "exists", ref],
        env=_podman_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(
            f"`podman image exists {ref}` failed (exit status {proc.returncode}): "
            f"{proc.stderr.strip()}"
        )
    return proc.returncode == 0


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock shared by every process on this machine (one file per image kind,
    so that building the RunPod image may build the base under the base's own lock)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / f"{name}.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _run_step(what: str, argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> None:
    """Run one build step, its output to `log_path`; RuntimeError with the tail on failure."""
    _log(f"{what}: {' '.join(argv)} (output in {log_path})")
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=_podman_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            rc: int | None = proc.wait(timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
    if rc == 0:
        _log(f"{what}: done in {time.monotonic() - start:.0f} s")
        return
    with open(log_path, errors="replace") as f:
        tail = "".join(collections.deque(f, maxlen=_TAIL_LINES))
    status = f"timed out after {BUILD_TIMEOUT_S} s" if rc is None else f"exit status {rc}"
    raise RuntimeError(
        f"{what} failed ({status}): {' '.join(argv)}\n"
        f"--- last {_TAIL_LINES} lines of {log_path} ---\n{tail}"
    )


def _base_tag() -> str:
    return _short_hash(["base", str(FORMAT_VERSION), json.dumps(MMDEBSTRAP_ARGS)])


def base_image() -> str:
    """`localhost/podium-test-base:<tag>`: Debian bookworm with python3, python3-venv and
    ca-certificates (mmdebstrap, then `podman import`); built only if podman lacks it."""
    ref = f"{BASE_REPO}:{_base_tag()}"
    with _locked("base"):
        if _image_exists(ref):
            return ref
        _log(f"building {ref} (Debian bookworm root; about a minute)")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=STATE_DIR, prefix="base-") as tmp:
            tar = Path(tmp) / "rootfs.tar"
            argv = ["mmdebstrap", *MMDEBSTRAP_ARGS, str(tar)]
            _run_step("mmdebstrap", argv, STATE_DIR / "base-mmdebstrap.log")
            argv = ["podman", "import", str(tar), ref]
            _run_step("podman import", argv, STATE_DIR / "base-import.log")
        _log(f"built {ref} in {time.monotonic() - start:.0f} s")
    return ref


def _handler_files() -> list[Path]:
    files = sorted(
        p
        for p in HANDLERS_DIR.iterdir()
        if p.is_file() and p.suffix not in (".pyc", ".pyo") and not p.name.startswith(".")
    )
    if not files:
        raise RuntimeError(f"no handler files in {HANDLERS_DIR}")
    return files


def runpod_image() -> str:
    """`localhost/podium-test-runpod:<tag>`: the base, the host CA bundle, /venv with the
    runpod SDK, and every file of tests/images/handlers/ in /handlers/ (default command:
    echo.py). Builds the base first if needed; built only if podman lacks it."""
    base = base_image()
    containerfile = _CONTAINERFILE.format(base=base, runpod=RUNPOD_VERSION)
    handlers = _handler_files()
    parts: list[str | bytes] = ["runpod", str(FORMAT_VERSION), base, containerfile]
    for path in handlers:
        parts += [path.name, path.read_bytes()]
    ref = f"{RUNPOD_REPO}:{_short_hash(parts)}"
    with _locked("runpod"):
        if _image_exists(ref):
            return ref
        _log(f"building {ref} (pip install runpod=={RUNPOD_VERSION}; about a minute)")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=STATE_DIR, prefix="runpod-") as tmp:
            context = Path(tmp) / "context"
            (context / "handlers").mkdir(parents=True)
            (context / "Containerfile").write_text(containerfile)
            shutil.copyfile(HOST_CA_BUNDLE, context / "ca-certificates.crt")
            for path in handlers:
                shutil.copyfile(path, context / "handlers" / path.name)
            _run_step(
                "podman build",
                ["podman", "build", "--pull=never", "-f", "Containerfile", "-t", ref, "."],
                STATE_DIR / "runpod-build.log",
                cwd=context,
            )
        _log(f"built {ref} in {time.monotonic() - start:.0f} s")
    return ref


def _checkout_parts() -> list[str | bytes]:
    """What defines this checkout's Podium package: pyproject.toml and every file of src/."""
    files = [REPO_ROOT / "pyproject.toml"]
    files += sorted(
        p for p in (REPO_ROOT / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    parts: list[str | bytes] = []
    for path in files:
        parts += [str(path.relative_to(REPO_ROOT)), path.read_bytes()]
    return parts


def podium_image(handlers: dict[str, str]) -> str:
    """`localhost/podium-test-podium:<tag>`: the base, /venv with this checkout's Podium (a
    wheel built here; its dependencies from PyPI) and `handlers` ({file name: text}) in
    /handlers/. No default command. Rebuilt when src/, pyproject.toml or a handler changes."""
    base = base_image()
    containerfile = _PODIUM_CONTAINERFILE.format(base=base)
    parts: list[str | bytes] = ["podium", str(FORMAT_VERSION), base, containerfile]
    parts += _checkout_parts()
    for name, text in sorted(handlers.items()):
        parts += [name, text]
    ref = f"{PODIUM_REPO}:{_short_hash(parts)}"
    with _locked("podium"):
        if _image_exists(ref):
            return ref
        _log(f"building {ref} (this checkout's Podium and its dependencies; a minute or two)")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=STATE_DIR, prefix="podium-") as tmp:
            context = Path(tmp) / "context"
            (context / "handlers").mkdir(parents=True)
            (context / "Containerfile").write_text(containerfile)
            shutil.copyfile(HOST_CA_BUNDLE, context / "ca-certificates.crt")
            for name, text in handlers.items():
                (context / "handlers" / Path(name).name).write_text(text)
            wheel_argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
            wheel_argv += ["-w", str(context / "wheel"), str(REPO_ROOT)]
            _run_step("pip wheel", wheel_argv, STATE_DIR / "podium-wheel.log")
            _run_step(
                "podman build",
                ["podman", "build", "--pull=never", "-f", "Containerfile", "-t", ref, "."],
                STATE_DIR / "podium-build.log",
                cwd=context,
            )
        _log(f"built {ref} in {time.monotonic() - start:.0f} s")
    return ref
