"""tests/netns.py: a test host in its own network namespace reaches this machine only
through its veth link, loses it when the link is cut, gets it back, and leaves nothing
behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import wait_until
from tests.netns import NetnsHost, netns_host

pytestmark = pytest.mark.e2e

# Connects to HOST:PORT with a 1 s timeout; prints what the listener sent, or the error.
CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as s:
        s.settimeout(1)
        print(s.recv(64).decode())
except OSError as exc:
    print(f"unreachable: {exc}")
"""


@contextmanager
def listener(addr: str) -> Iterator[int]:
    """A TCP listener on `addr` (never 127.0.0.1 unless asked) that greets each caller."""
    server = socket.create_server((addr, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(b"hello from " + addr.encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def reach(host: NetnsHost, addr: str, port: int) -> str:
    """What a process inside the test host gets when it connects to addr:port."""
    done = host.run(
        [sys.executable, "-c", CONNECT, addr, str(port)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_process_in_the_namespace_reaches_the_host_only_over_the_link():
    with netns_host() as host, listener(host.host_addr) as port:
        assert host.host_addr.startswith("10.211.") and host.ns_addr.startswith("10.211.")
        assert reach(host, host.host_addr, port) == f"hello from {host.host_addr}"
        # This machine's loopback is not the namespace's.
        with listener("127.0.0.1") as local_port:
            assert reach(host, "127.0.0.1", local_port).startswith("unreachable")

        host.cut()
        assert reach(host, host.host_addr, port).startswith("unreachable")

        host.restore()
        wait_until(
            lambda: reach(host, host.host_addr, port) == f"hello from {host.host_addr}",
            timeout=30,
            what="the link to come back",
        )


def test_a_listener_inside_is_reached_from_the_host_and_everything_is_removed():
    with netns_host() as host:
        server = host.popen(
            [sys.executable, "-m", "http.server", "--bind", host.ns_addr, "8000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                with socket.create_connection((host.ns_addr, 8000), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(answers, timeout=30, what="the server inside the namespace")
        assert server.pid in host.pids()  # `ip netns exec` execs the command itself
        name, host_if = host.name, host.host_if
    # Gone: the process, the namespace, the link.
    assert server.poll() is not None
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in namespaces.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f" {host_if}@" not in links and f" {host_if}:" not in links
