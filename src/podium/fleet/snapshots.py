"""Snapshot cold starts (docs/snapshots.md): a worker of a flashboot endpoint is
checkpointed with CRIU once its handler is built, and later starts of the same endpoint
version on this host restore that image instead of starting the program.

    Snapshotter.spawn(endpoint, argv, env) -> SnapshotProcess     (a fleet/process.Process)
        a valid image of the key         restore it (a thread: criu restore), a new worker
                                         told its identity on its stdin; on any failure
                                         the image is deleted, the failure logged and
                                         counted, and the program started instead
        none, no dump running for key    start it checkpointable: `unshare --pid --fork
                                         --kill-child setsid ARGV`, the control pipe as
                                         fd 3 (worker/snapshot.py); when it pauses, dump
                                         it (it keeps running), then let it go on
        else                             start it checkpointable, never dumped

    SnapshotStore   <data dir>/snapshots/<key>/{img/, meta.json}: one image per endpoint
                    (a new version's replaces the old), at most `host_limit` bytes in all
                    (least recently restored evicted), `endpoint_limit` each. A dump goes to
                    .tmp-<key>-<pid>-<rand>/ and is renamed into place only when criu
                    succeeded: a dump killed half way leaves a .tmp dir, never an image,
                    swept when its gateway is gone.

Each copy's stdin and stdout are new pipes, passed to criu with --inherit-fd in place of
the pipes the image recorded: the log shipper reads stdout as for any worker. Restored
workers are the gateway's children (--restore-sibling): their exit codes are waited for.
Restores and the spawns after a failed one run on one long-lived thread: a worker dies
with the thread that started it (PR_SET_PDEATHSIG), so that thread lives as long as the
fleet.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from podium.board import SnapshotSummary
from podium.fleet.process import DIE_WITH_PARENT
from podium.fleet.settings import FleetSettings
from podium.fleet.snapshot_plan import (
    FileStamp,
    SnapshotInfo,
    identity_env,
    mapped_files,
    percentile,
    snapshot_key,
    stale_files,
    to_evict,
    uses_cuda,
)

__all__ = [
    "Criu",
    "SnapshotInfo",
    "SnapshotProcess",
    "SnapshotStore",
    "Snapshotter",
    "find_criu",
]

log = logging.getLogger("podium.fleet")

CRIU_MIN_MAJOR = 4
CRIU_CACHE = Path("podium") / "criu-4.1.1" / "criu"  # where tools/build-criu.sh puts it
NEEDS = ("unshare", "setsid")  # util-linux: how a checkpointable worker is launched
CONTROL_FD = 3
CONTROL_MAX_BYTES = 8 << 20  # the pause line (it lists the module files)
DUMP_TIMEOUT_S = 600.0
RESTORE_TIMEOUT_S = 120.0
DUMP_FLAGS = ("-o", "dump.log", "--leave-running")  # the worker goes on after its dump
MAX_FILES = 50_000  # files one image records
RESTORE_TIMES = 200  # restore durations kept per endpoint (the P50/P90)
META = "meta.json"
UNSUPPORTED_KEPT = 1000  # keys whose workers said they cannot be checkpointed


@dataclass(frozen=True, slots=True)
class Criu:
    path: str
    version: str

    @property
    def major(self) -> int:
        m = re.match(r"(\d+)", self.version)
        return int(m.group(1)) if m else 0


def _criu_version(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Version:\s*(\S+)", out)
    return m.group(1) if m else None


def find_criu(configured: str | None = None, env: Mapping[str, str] | None = None) -> Criu | None:
    """CRIU >= 4: `configured` (PODIUM_CRIU), else `criu` on PATH, else the one
    tools/build-criu.sh cached. None when there is none, this process is not root
    (checkpoint and restore need CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE), or util-linux's
    `unshare` and `setsid` (a checkpointable worker's launch) are missing."""
    env = os.environ if env is None else env
    if os.geteuid() != 0 or not all(shutil.which(p, path=env.get("PATH")) for p in NEEDS):
        return None
    home = Path(env.get("HOME") or "~").expanduser()
    cache_home = env.get("XDG_CACHE_HOME") or str(home / ".cache")
    candidates = [
        configured,
        shutil.which("criu", path=env.get("PATH")),
        str(Path(cache_home) / CRIU_CACHE),
    ]
    for path in candidates:
        if not path or not os.access(path, os.X_OK):
            continue
        version = _criu_version(path)
        if version is not None and Criu(path, version).major >= CRIU_MIN_MAJOR:
            return Criu(path, version)
    return None


def cuda_plugin_dir(criu: Criu, env: Mapping[str, str] | None = None) -> str | None:
    """Where CRIU's CUDA plugin is (it checkpoints a process's GPU state through NVIDIA's
    `cuda-checkpoint`, driver >= 570), when it and `cuda-checkpoint` are both there: beside
    the binary (`plugins/`, tools/build-criu.sh) or CRIU's own library dir. None: GPU
    workers are not snapshotted. UNTESTED on a GPU (docs/snapshots.md)."""
    env = os.environ if env is None else env
    if shutil.which("cuda-checkpoint", path=env.get("PATH")) is None:
        return None
    for d in (Path(criu.path).parent / "plugins", Path("/usr/lib/criu"), Path("/usr/lib64/criu")):
        if (d / "cuda_plugin.so").is_file():
            return str(d)
    return None


def host_facts(criu: Criu) -> dict[str, str]:
    """What a snapshot of this host must match: kernel, CPU flags, CRIU version."""
    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    uname = platform.uname()
    return {
        "kernel": f"{uname.release} {uname.version}",
        "machine": uname.machine,
        "cpu": flags,
        "criu": criu.version,
    }


def _stamp(path: str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(path, st.st_size, st.st_mtime_ns)


def _dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class _Image:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def img(self) -> Path:
        return self.path / "img"


class SnapshotStore:
    """The images of one host (one data dir). Thread-safe; every call is blocking I/O."""

    def __init__(self, root: Path, *, host_limit: int, endpoint_limit: int) -> None:
        self.root = root
        self.host_limit = host_limit
        self.endpoint_limit = endpoint_limit
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.sweep()

    def sweep(self) -> list[str]:
        """Remove what dumps killed half way left (their gateway is gone), and images
        without a readable record."""
        removed = []
        for p in self.root.iterdir():
            if p.name.startswith((".tmp-", ".restore-")):  # .tmp-<pid>-<key>-<random>
                parts = p.name.split("-")
                owner = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else 0
                if owner == os.getpid() or _pid_alive(owner):
                    continue
            elif p.name.startswith(".del-"):
                pass  # a delete cut short
            elif p.name.startswith(".") or self._meta(p) is not None:
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        return removed

    @staticmethod
    def _meta(path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((path / META).read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and (path / "img").is_dir() else None

    def _image(self, key: str) -> _Image | None:
        path = self.root / key
        meta = self._meta(path)
        return None if meta is None else _Image(key, path, meta)

    def lookup(self, key: str) -> _Image | None:
        """The image of `key` if every file it depends on is unchanged; a stale one is
        deleted (logged)."""
        image = self._image(key)
        if image is None:
            return None
        recorded = [FileStamp(*f) for f in image.meta.get("files", [])]
        changed = stale_files(recorded, {f.path: _stamp(f.path) for f in recorded})
        if changed:
            log.info("snapshot %s is stale (%s changed): deleted", key, ", ".join(changed))
            self.delete(key)
            return None
        return image

    def has(self, key: str) -> bool:
        """An image of `key` is in place (not yet checked against its files: `lookup`)."""
        return (self.root / key / META).is_file()

    def begin(self, key: str) -> Path:
        tmp = self.root / f".tmp-{os.getpid()}-{key}-{secrets.token_hex(3)}"
        (tmp / "img").mkdir(parents=True)
        return tmp

    def commit(self, tmp: Path, key: str, meta: dict[str, Any]) -> SnapshotInfo | None:
        """Put a finished dump in place (its record written last, then one rename), delete
        the endpoint's other images, and evict to stay under the host's bound. None (and
        the dump deleted) when it is over the endpoint's bound."""
        size = _dir_size(tmp)
        meta = {**meta, "key": key, "bytes": size, "usedAt": meta["createdAt"], "restores": 0}
        if size > self.endpoint_limit or size > self.host_limit:
            log.warning(
                "snapshot of endpoint %s is %d MB, over the bound (%d MB): not kept",
                meta["endpointId"],
                size >> 20,
                min(self.endpoint_limit, self.host_limit) >> 20,
            )
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        (tmp / META).write_text(json.dumps(meta))
        with self._lock:
            for info in self.list():
                if info.endpoint_id == meta["endpointId"] and info.key != key:
                    log.info("snapshot %s replaced by %s: deleted", info.key, key)
                    self._remove(info.key)
            held = [i for i in self.list() if i.key != key]
            for old in to_evict(held, size, self.host_limit):
                log.info("snapshot %s evicted (PODIUM_SNAPSHOT_MAX_GB)", old)
                self._remove(old)
            self._remove(key)
            os.rename(tmp, self.root / key)
        return self._info(key)

    def used(self, key: str) -> None:
        """A restore of it succeeded: it is recently used."""
        with self._lock:
            image = self._image(key)
            if image is None:
                return
            restores = image.meta.get("restores", 0) + 1
            meta = {**image.meta, "usedAt": time.time(), "restores": restores}
            tmp = image.path / f".{META}.{secrets.token_hex(3)}"
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, image.path / META)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._remove(key)

    def _remove(self, key: str) -> bool:
        path = self.root / key
        if not path.exists():
            return False
        # renamed first: a restore never reads a half-deleted image
        gone = self.root / f".del-{key}-{secrets.token_hex(3)}"
        try:
            os.rename(path, gone)
        except OSError:
            return False
        shutil.rmtree(gone, ignore_errors=True)
        return True

    def _info(self, key: str) -> SnapshotInfo | None:
        image = self._image(key)
        if image is None:
            return None
        m = image.meta
        return SnapshotInfo(
            key=key,
            endpoint_id=str(m.get("endpointId", "")),
            size=int(m.get("bytes", 0)),
            created_at=float(m.get("createdAt", 0)),
            used_at=float(m.get("usedAt", 0)),
            restores=int(m.get("restores", 0)),
            dump_s=float(m.get("dumpSeconds", 0)),
            files=len(m.get("files", [])),
        )

    def list(self) -> list[SnapshotInfo]:
        out = []
        for p in sorted(self.root.iterdir()):
            if not p.name.startswith(".") and (info := self._info(p.name)) is not None:
                out.append(info)
        return out


class SnapshotProcess:
    """A worker started or restored by the Snapshotter (fleet/process.Process). Its
    stdout is one pipe whatever way it comes up (restored, or started after a restore
    failed), so its log shipper reads one stream."""

    def __init__(self, snapshotter: Snapshotter, endpoint_id: str, key: str) -> None:
        self._s = snapshotter
        self.endpoint_id = endpoint_id
        self.key = key
        self.restored_s: float | None = None  # a restore's duration, once restored
        self.note: str | None = None
        self.notes: deque[str] = deque(maxlen=50)  # lines for the worker's log
        out_r, self._out_w = os.pipe()
        self.stdout: IO[bytes] | None = os.fdopen(out_r, "rb", buffering=0)
        self._popen: subprocess.Popen[bytes] | None = None
        self._restored_pid: int | None = None
        self._worker_pid: int | None = None  # the worker (not unshare) on the host
        self._code: int | None = None
        self._failed: int | None = None  # could not be started at all: this exit code
        self._killed = False

    def flush_notes(self, say: Callable[[str], None]) -> None:
        """What the snapshotter did with it, into its log (`say`: its shipper's note)."""
        while self.notes:
            say(self.notes.popleft())

    def killed(self) -> bool:
        """Stopped before or while it came up."""
        return self._killed

    # --- the Process protocol ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        if self._restored_pid is not None:
            return self._restored_pid
        return self._popen.pid if self._popen is not None else None

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        if self._failed is not None:
            self._code = self._failed
        elif self._restored_pid is not None:
            try:
                pid, status = os.waitpid(self._restored_pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self._restored_pid, 255 << 8
            if pid:
                self._code = os.waitstatus_to_exitcode(status)
        elif self._popen is not None:
            code = self._popen.poll()
            if code is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._popen.pid, signal.SIGKILL)
                self._code = code
                if self._popen.stdin is not None:  # a worker that never paused
                    with contextlib.suppress(OSError):
                        self._popen.stdin.close()
        return self._code

    def _worker(self) -> int | None:
        if self._restored_pid is not None:
            return self._restored_pid
        if self._worker_pid is None and self._popen is not None:
            # unshare's child: the worker, first process of its namespace
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = self._popen.pid
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                self._worker_pid = int(children[0])
        return self._worker_pid

    def terminate(self) -> None:
        """SIGTERM to the worker itself (unshare ignores it; the worker, its namespace's
        first process, gets it because its runtime handles it)."""
        pid = self._worker()
        if pid is not None and self._code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        elif self._popen is None and self._restored_pid is None:
            self._killed = True  # not up yet: it is not started

    def kill(self) -> None:
        self._killed = True
        pid = self._worker()
        if pid is not None and self._code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self._popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    # --- how it comes up (the Snapshotter calls these) ------------------------------------

    def start_plain(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Start the program as any worker (its key's workers cannot be snapshotted)."""
        try:
            self._popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=self._out_w,
                stderr=self._out_w,
                start_new_session=True,
                preexec_fn=DIE_WITH_PARENT,
            )
        finally:
            self._close_out()
        self._worker_pid = self._popen.pid

    def start(self, argv: Sequence[str], env: Mapping[str, str], candidate: bool) -> None:
        """Start the program checkpointable; `candidate`: dump it when it pauses."""
        ctl_r, ctl_w = os.pipe()

        def child() -> None:
            if ctl_w == CONTROL_FD:
                os.set_inheritable(CONTROL_FD, True)
            else:
                os.dup2(ctl_w, CONTROL_FD)
            if DIE_WITH_PARENT is not None:
                DIE_WITH_PARENT()

        full = ["unshare", "--pid", "--fork", "--kill-child", "setsid", *argv]
        try:
            popen = subprocess.Popen(
                full,
                env={**env, "PODIUM_SNAPSHOT_FD": str(CONTROL_FD)},
                stdin=subprocess.PIPE,
                stdout=self._out_w,
                stderr=self._out_w,
                pass_fds=(CONTROL_FD,),
                start_new_session=True,
                preexec_fn=child,
            )
        except BaseException:
            os.close(ctl_r)
            raise
        finally:
            os.close(ctl_w)
            self._close_out()
        self._popen = popen
        threading.Thread(
            target=self._s._handshake,
            args=(self, os.fdopen(ctl_r, "rb"), candidate),
            name=f"snapshot-{self.key[:8]}",
            daemon=True,
        ).start()

    def release(self, answer: dict[str, Any]) -> None:
        """Let a paused worker go on (the original: not restored)."""
        stdin = self._popen.stdin if self._popen is not None else None
        if stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            stdin.write((json.dumps(answer) + "\n").encode())
            stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()

    def _close_out(self) -> None:
        if self._out_w >= 0:
            with contextlib.suppress(OSError):
                os.close(self._out_w)
            self._out_w = -1


class Snapshotter:
    """Decides, for each start of a flashboot worker, restore / dump / plain start, and
    keeps the counts the workers list and /metrics show."""

    def __init__(self, criu: Criu, store: SnapshotStore) -> None:
        self.criu = criu
        self.store = store
        self.host = host_facts(criu)
        self.cuda_plugins = cuda_plugin_dir(criu)
        self._lock = threading.Lock()
        self._dumping: set[str] = set()
        self._unsupported: dict[str, str] = {}  # key -> why it cannot be checkpointed
        self._restores: dict[str, deque[float]] = {}
        self._counts: dict[str, dict[str, int]] = {}  # endpoint -> restored/failed/dumped
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="snapshot-restores", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: FleetSettings, root: Path) -> Snapshotter | None:
        """This host's, with its images under `root` and the PODIUM_SNAPSHOT_* bounds;
        None when PODIUM_SNAPSHOTS=off or there is no usable CRIU (find_criu)."""
        criu = None if settings.snapshots == "off" else find_criu(settings.criu)
        if criu is None:
            return None
        gib = 1 << 30
        store = SnapshotStore(
            root,
            host_limit=int(settings.snapshot_max_gb * gib),
            endpoint_limit=int(settings.snapshot_endpoint_max_gb * gib),
        )
        return cls(criu, store)

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("snapshot restore failed unexpectedly")

    def _count(self, endpoint_id: str, what: str) -> None:
        with self._lock:
            c = self._counts.setdefault(endpoint_id, {})
            c[what] = c.get(what, 0) + 1

    # --- the decision -------------------------------------------------------------------

    def spawn(
        self, endpoint_id: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> SnapshotProcess:
        """Blocking only for a start (Popen); a restore runs on the restore thread."""
        for value in (*argv, *env.keys(), *env.values()):
            if "\0" in value:
                raise ValueError("embedded null byte")
        key = snapshot_key(endpoint_id, argv, env, self.host)
        proc = SnapshotProcess(self, endpoint_id, key)
        with self._lock:
            unsupported = key in self._unsupported
        if unsupported:
            proc.start_plain(argv, env)
            return proc
        if self.store.has(key):  # its files are checked on the restore thread
            proc.note = "restoring from its snapshot"
            self._jobs.put(lambda: self._restore(proc, key, argv, env))
            return proc
        self._start_checkpointable(proc, argv, env)
        return proc

    def _start_checkpointable(
        self, proc: SnapshotProcess, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        """Start it checkpointable: the first start of a key with no dump running is the
        one dumped."""
        with self._lock:
            claim = proc.key not in self._dumping
            if claim:
                self._dumping.add(proc.key)
        try:
            proc.start(argv, env, candidate=claim)
        except BaseException:
            if claim:
                self._done_dumping(proc.key)
            raise

    def _done_dumping(self, key: str) -> None:
        with self._lock:
            self._dumping.discard(key)

    # --- restore ------------------------------------------------------------------------

    def _restore(
        self, proc: SnapshotProcess, key: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        if proc.killed():
            proc._failed = -9
            proc._close_out()
            return
        image = self.store.lookup(key)  # a stale one (a file it maps changed) is deleted
        if image is None:
            self._start_instead(proc, argv, env)
            return
        began = time.monotonic()
        error = self._criu_restore(proc, image, env)
        if error is None:
            proc.restored_s = time.monotonic() - began
            proc.note = None
            with self._lock:
                times = self._restores.setdefault(proc.endpoint_id, deque(maxlen=RESTORE_TIMES))
                times.append(proc.restored_s)
            self._count(proc.endpoint_id, "restored")
            self.store.used(image.key)
            if proc.killed():  # stopped while it was being restored
                proc.kill()
            proc.notes.append(
                f"--- podium: restored from snapshot {image.key} in {proc.restored_s:.2f} s ---"
            )
            return
        # never worse than without: a failed restore is a normal start
        log.warning("restore of snapshot %s failed (%s): starting the worker", image.key, error)
        self._count(proc.endpoint_id, "failed")
        self.store.delete(image.key)
        proc.notes.append(
            f"--- podium: restore of snapshot {image.key} failed ({error}); "
            "starting the program (the snapshot is deleted and made anew) ---"
        )
        self._start_instead(proc, argv, env)

    def _start_instead(
        self, proc: SnapshotProcess, argv: Sequence[str], env: Mapping[str, str]
    ) -> None:
        """No image to restore after all: the program, started (on the restore thread)."""
        proc.note = None
        if proc.killed():  # stopped meanwhile: nothing to start
            proc._failed = -9
            proc._close_out()
            return
        try:
            self._start_checkpointable(proc, argv, env)
        except (OSError, ValueError) as exc:
            proc.notes.append(f"--- podium: cannot start {list(argv[:1])}: {exc} ---")
            proc._failed = 127
            proc._close_out()

    def _criu_restore(
        self, proc: SnapshotProcess, image: _Image, env: Mapping[str, str]
    ) -> str | None:
        """Restore one copy; None on success, else what went wrong."""
        meta = image.meta
        work = Path(self.store.root) / f".restore-{os.getpid()}-{secrets.token_hex(4)}"
        work.mkdir()
        in_r, in_w = os.pipe()
        try:
            cmd = [
                self.criu.path, "restore", "-d", "--restore-sibling",
                "-D", str(image.img), "-W", str(work), "-o", "restore.log",
                "--pidfile", str(work / "pid"),
                "--inherit-fd", f"fd[{in_r}]:pipe:[{meta['stdinIno']}]",
                "--inherit-fd", f"fd[{proc._out_w}]:pipe:[{meta['stdoutIno']}]",
                *self._plugins(bool(meta.get("gpu"))),
            ]  # fmt: skip
            try:
                r = subprocess.run(
                    cmd,
                    pass_fds=(in_r, proc._out_w),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=RESTORE_TIMEOUT_S,
                    preexec_fn=DIE_WITH_PARENT,  # a gateway killed mid-restore ends it
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return f"criu: {exc}"
            if r.returncode != 0:
                why = _last_error(work / "restore.log")
                return f"criu restore exited with {r.returncode}: {why}"
            try:
                pid = int((work / "pid").read_text().strip())
            except (OSError, ValueError):
                return "criu wrote no pid"
            proc._restored_pid = pid
            answer = {"restored": True, "env": identity_env(env)}
            try:
                os.write(in_w, (json.dumps(answer) + "\n").encode())
            except OSError as exc:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return f"the restored worker did not take its identity: {exc}"
            proc._close_out()
            return None
        finally:
            for fd in (in_r, in_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            if proc._restored_pid is not None:
                shutil.rmtree(work, ignore_errors=True)
            else:  # kept for a look: the last failure only
                last = Path(self.store.root) / ".last-restore-failure"
                shutil.rmtree(last, ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.rename(work, last)

    # --- dump ---------------------------------------------------------------------------

    def _handshake(self, proc: SnapshotProcess, control: IO[bytes], candidate: bool) -> None:
        """The control pipe's one line (worker/snapshot.py): dump a paused candidate, then
        let it go on."""
        try:
            with control:
                msg = _line(control)
                spoke = isinstance(msg, dict) and msg.get("hello") == "podium"
                if spoke:
                    msg = _line(control)
            if not spoke and msg is None:
                # it ended without a word: not Podium's runtime (the runpod SDK's worker)
                self._cannot(proc, "it never answered on the snapshot control pipe (not "
                             "Podium's worker runtime): its workers start normally")  # fmt: skip
                return
            if not isinstance(msg, dict):
                return  # it ended while building its handler (a crash: tried again)
            if not msg.get("pause"):
                self._cannot(proc, str(msg.get("why") or "it cannot be checkpointed")[:300])
                return
            pid = msg.get("pid")
            proc._worker_pid = pid if isinstance(pid, int) and pid > 0 else None
            if candidate and proc._worker_pid is not None and not proc.killed():
                files = msg.get("files")
                self._dump(proc, proc._worker_pid, files if isinstance(files, list) else [])
            proc.release({"restored": False})
        finally:
            if candidate:
                self._done_dumping(proc.key)

    def _cannot(self, proc: SnapshotProcess, why: str) -> None:
        """The workers of this key cannot be checkpointed: later ones start normally."""
        with self._lock:
            if len(self._unsupported) >= UNSUPPORTED_KEPT:
                self._unsupported.clear()
            self._unsupported[proc.key] = why
        proc.notes.append(f"--- podium: no snapshot of this worker: {why} ---")

    def _dump(self, proc: SnapshotProcess, pid: int, module_files: list[Any]) -> None:
        rss = _rss_bytes(pid)
        if rss > min(self.store.endpoint_limit, self.store.host_limit):
            self._count(proc.endpoint_id, "dump_failed")
            proc.notes.append(
                f"--- podium: no snapshot: the worker holds {rss >> 20} MB, over "
                f"PODIUM_SNAPSHOT_ENDPOINT_MAX_GB ---"
            )
            return
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return
        gpu = uses_cuda(maps)  # CUDA maps the NVIDIA device files into the process
        if gpu and self.cuda_plugins is None:
            self._count(proc.endpoint_id, "dump_failed")
            proc.notes.append(
                "--- podium: no snapshot of a worker using CUDA: CRIU's CUDA plugin or "
                "NVIDIA's cuda-checkpoint is missing (docs/snapshots.md) ---"
            )
            return
        paths = [*mapped_files(maps), *(str(f) for f in module_files if isinstance(f, str))]
        stamps = {p: s for p in dict.fromkeys(paths[:MAX_FILES]) if (s := _stamp(p)) is not None}
        popen = proc._popen
        assert popen is not None and popen.stdin is not None and proc.stdout is not None
        tmp = self.store.begin(proc.key)
        began = time.monotonic()
        dump = [self.criu.path, "dump", "-t", str(pid), "-D", str(tmp / "img"), *DUMP_FLAGS]
        try:
            r = subprocess.run(
                [*dump, *self._plugins(gpu)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=DUMP_TIMEOUT_S,
                preexec_fn=DIE_WITH_PARENT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            r = subprocess.CompletedProcess([], -1, stderr=str(exc).encode())
        took = time.monotonic() - began
        if r.returncode != 0:
            why = _last_error(tmp / "img" / "dump.log")
            shutil.rmtree(tmp, ignore_errors=True)
            self._count(proc.endpoint_id, "dump_failed")
            what = f"snapshot of endpoint {proc.endpoint_id} failed (criu {r.returncode}): {why}"
            log.warning("%s", what)
            proc.notes.append(f"--- podium: {what} ---")
            # not tried at every cold start: its key's workers start normally from now on
            # (until this gateway restarts, or the endpoint changes)
            self._cannot(proc, f"CRIU could not checkpoint it ({why})")
            return
        meta = {
            "endpointId": proc.endpoint_id,
            "createdAt": time.time(),
            "dumpSeconds": took,
            "host": self.host,
            "stdinIno": os.fstat(popen.stdin.fileno()).st_ino,
            "stdoutIno": os.fstat(proc.stdout.fileno()).st_ino,
            "gpu": gpu,
            "files": [list(asdict(s).values()) for s in stamps.values()],
        }
        info = self.store.commit(tmp, proc.key, meta)
        if info is None:
            self._count(proc.endpoint_id, "dump_failed")
        else:
            self._count(proc.endpoint_id, "dumped")
            what = f"snapshot {proc.key} of endpoint {proc.endpoint_id}"
            log.info("%s: %d MB in %.2f s", what, info.size >> 20, took)
            proc.notes.append(
                f"--- podium: snapshot {proc.key} taken ({info.size >> 20} MB in {took:.2f} s) ---"
            )

    def _plugins(self, gpu: bool) -> list[str]:
        """CRIU's CUDA plugin for a GPU worker (its device state in the image)."""
        return ["-L", self.cuda_plugins] if gpu and self.cuda_plugins else []

    # --- what is shown ------------------------------------------------------------------

    def summaries(self, live: Collection[str] | None = None) -> dict[str, SnapshotSummary]:
        """By endpoint; with `live`, the images and counts of other endpoints (deleted
        ones) are dropped first."""
        images: dict[str, list[SnapshotInfo]] = {}
        for info in self.store.list():
            if live is not None and info.endpoint_id not in live:
                log.info("snapshot %s: endpoint %s is gone: deleted", info.key, info.endpoint_id)
                self.store.delete(info.key)
                continue
            images.setdefault(info.endpoint_id, []).append(info)
        with self._lock:
            if live is not None:
                for gone in [ep for ep in self._counts if ep not in live]:
                    del self._counts[gone]
                for gone in [ep for ep in self._restores if ep not in live]:
                    del self._restores[gone]
            endpoints = set(images) | set(self._counts)
            out = {}
            for ep in endpoints:
                c = self._counts.get(ep, {})
                times = list(self._restores.get(ep, ()))
                mine = images.get(ep, [])
                out[ep] = SnapshotSummary(
                    images=len(mine),
                    bytes=sum(i.size for i in mine),
                    restored=c.get("restored", 0),
                    failed=c.get("failed", 0),
                    dumped=c.get("dumped", 0),
                    dump_failed=c.get("dump_failed", 0),
                    restore_p50_s=percentile(times, 50),
                    restore_p90_s=percentile(times, 90),
                )
        return out


def _line(control: IO[bytes]) -> Any:
    """One JSON line of the control pipe; None at its end (or for a line that is not JSON)."""
    line = control.readline(CONTROL_MAX_BYTES)
    try:
        return json.loads(line) if line.strip() else None
    except ValueError:
        return None


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _last_error(path: Path) -> str:
    """CRIU's last error line in its log (the reason it failed), else a pointer to it."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"no log at {path}"
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors[-1] if errors else (lines[-1] if lines else "empty log")).strip()[:300]
