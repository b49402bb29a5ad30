"""A real local Ray cluster for the `ray` tests: a head and worker nodes started with
`ray start ... --block`, each in its own session (so that one node's processes can be
killed together, like a machine that dies), ended by their process ids.

Every node runs this checkout's code (PYTHONPATH), declares fake GPUs (`--num-gpus`) and
a small object store; the head detects a dead node within about five seconds (its health
check settings), so node-loss tests do not wait for Ray's production defaults.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 80 * 1000 * 1000  # Ray's minimum is 75 MiB-ish
_START_TIMEOUT_S = 90.0


def ray_available() -> str | None:
    """Why the Ray tests cannot run here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install -e '.[ray]')"
    if not Path(RAY).exists():
        return f"the ray command is not beside {sys.executable}"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    gpus: int
    killed: bool = False  # on purpose (kill9): its exit is no failure

    def pids(self) -> list[int]:
        """Every process of this node's session: ray start, raylet, its workers and the
        actors' worker processes (these have sessions of their own but die with their
        actor, see fleet/process.py)."""
        sid = self.proc.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # field 6 of stat: the session id
                found.append(int(entry.name))
        return found

    def kill9(self) -> None:
        """kill -9 every process of the node at once: the machine is gone."""
        self.killed = True
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        self.kill9()


@dataclass
class RayCluster:
    """`start()` brings up the head and `workers` nodes of `gpus_per_node` fake GPUs."""

    workers: int = 2
    gpus_per_node: int = 2
    gpu_type: str = "Fake GPU"
    gpu_memory_mb: int = 24564
    nodes: list[Node] = field(default_factory=list)
    port: int = 0
    temp_dir: Path | None = None

    ip: str = ""
    client_port: int = 0

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def client_address(self) -> str:
        """The head's Ray Client server (`--fleet ray://...`)."""
        return f"ray://{self.ip}:{self.client_port}"

    @property
    def gpu_resource(self) -> str:
        return f"podium_gpu:{self.gpu_type}:{self.gpu_memory_mb}"

    def env(self) -> dict[str, str]:
        from tests.images import engine_env  # slot actors run Podman for image workers

        # Every node gets the same environment, whenever it starts: pytest's own variable
        # (the test running when a node is added back) stays out, as it would make that
        # node's workers differ (a snapshot is keyed by its worker's whole environment)
        inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        return {
            **inherited,
            **engine_env(),
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "RAY_USAGE_STATS_ENABLED": "0",
            # A lost node is declared dead after 5 missed checks of 1 s (Ray's default
            # waits ~30 s); slower answers than that only come from a dead node.
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "5",
        }

    def start(self) -> RayCluster:
        # Unix socket paths must stay short: a temp dir of our own, not pytest's.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="pray", dir="/tmp"))
        self.port = _free_port()
        self.client_port = _free_port()
        import ray.util

        self.ip = ray.util.get_node_ip_address()  # where Ray's nodes listen (not loopback)
        self._node(
            "head",
            [
                "--head",
                f"--port={self.port}",
                f"--ray-client-server-port={self.client_port}",
                "--num-cpus=1",
                "--num-gpus=0",
                "--include-dashboard=false",
                f"--temp-dir={self.temp_dir}",
            ],
            gpus=0,
        )
        self._wait_started(self.nodes[0])
        for i in range(self.workers):  # one at a time: a 2-core machine chokes otherwise
            self._wait_started(self.add_worker(f"worker{i + 1}"))
        self.wait_nodes(1 + self.workers)
        return self

    @staticmethod
    def _wait_started(node: Node) -> None:
        """`ray start` says so once the node runs (asking the cluster before would block)."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise AssertionError(f"ray node {node.name} exited: {node.log.read_text()}")
            if "Ray runtime started" in node.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"ray node {node.name} did not start: {node.log.read_text()}")

    def add_worker(self, name: str) -> Node:
        return self._node(
            name,
            [
                f"--address={self.address}",
                "--num-cpus=2",
                f"--num-gpus={self.gpus_per_node}",
                f'--resources={{"{self.gpu_resource}": {self.gpus_per_node}}}',
            ],
            gpus=self.gpus_per_node,
        )

    def _node(self, name: str, args: list[str], gpus: int) -> Node:
        assert self.temp_dir is not None
        log = self.temp_dir / f"{name}.log"
        with log.open("ab") as log_out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [
                    RAY,
                    "start",
                    "--block",
                    "--disable-usage-stats",
                    f"--object-store-memory={OBJECT_STORE_BYTES}",
                    *args,
                ],
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
                cwd=self.temp_dir,
            )
        node = Node(name, proc, log, gpus)
        self.nodes.append(node)
        return node

    def alive_nodes(self) -> int:
        return self._ask("sum(1 for n in ray.nodes() if n['Alive'])")

    def node_ids(self) -> set[str]:
        """The ids of the cluster's alive nodes."""
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', "
                "log_to_driver=False); print(' '.join(n['NodeID'] for n in ray.nodes() "
                "if n['Alive']))",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=self.env(),
            check=False,
        )
        lines = out.stdout.strip().splitlines()
        return set(lines[-1].split()) if lines else set()

    def free_gpus(self) -> int:
        """GPUs no actor holds (a short-lived driver asks the cluster)."""
        return self._ask("int(ray.available_resources().get('GPU', 0))")

    def _ask(self, expression: str) -> int:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', "
                f"log_to_driver=False); print({expression})",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=self.env(),
            check=False,
        )
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def wait_nodes(self, count: int) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None and not node.killed:
                    raise AssertionError(f"ray node {node.name} exited: {node.log.read_text()}")
            if self.alive_nodes() >= count:
                return
            time.sleep(0.5)
        raise AssertionError(f"the Ray cluster did not reach {count} nodes")

    def worker_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.name != "head" and n.proc.poll() is None]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
