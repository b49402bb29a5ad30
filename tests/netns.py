"""Test hosts of the project's own: a Linux network namespace joined to this machine by a
veth pair, so a test can run a process "on another machine" and cut its network.

    with netns_host() as host:           # skips the test where namespaces are not allowed
        proc = host.popen(["python", "-m", "http.server", "--bind", host.ns_addr])
        ...                              # the process reaches this machine at host.host_addr
        host.cut()                       # the link goes down: no packet passes either way
        host.restore()

Addresses are 10.211.N.0/30 (this machine .1, the namespace .2), a block no real network
here uses; N is picked free at creation. The namespace has its own loopback (up), and no
route anywhere but the /30: a process inside reaches only what listens on `host_addr`
(or on 0.0.0.0) here, never 127.0.0.1 of this machine.

Clean-up is by name, in a finally: the processes started through `popen` (and whatever
else runs inside the namespace: only their children can), the veth pair, the namespace.
Needs root (CAP_NET_ADMIN) and iproute2; `netns_host` skips with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["NetnsHost", "netns_host", "netns_unavailable"]

SUBNET_PREFIX = "10.211"
_counter = itertools.count()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def netns_unavailable() -> str | None:
    """Why test hosts cannot be made here (None: they can). Probes with a real
    `ip netns add` of a namespace of its own, deleted at once."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    probe = f"pdprobe{os.getpid()}"
    try:
        added = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` could not run: {exc}"
    if added.returncode != 0:
        return (
            f"`ip netns add` is not permitted here ({added.stderr.strip() or added.returncode}); "
            "run the tests as root, or in a container with CAP_NET_ADMIN and CAP_SYS_ADMIN"
        )
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class NetnsHost:
    """One namespace and its veth link to this machine."""

    name: str  # the namespace
    host_if: str  # the veth end on this machine
    ns_if: str  # the veth end inside the namespace
    host_addr: str  # this machine, as the namespace reaches it
    ns_addr: str  # the namespace, as this machine reaches it
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside the namespace, in its own process group; it is killed (the
        whole group) when the test host is removed."""
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(argv), **kwargs)
        self.processes.append(proc)
        return proc

    def run(self, argv: Sequence[str], timeout: float = 30, **kwargs: Any) -> Any:
        """Run `argv` inside the namespace to its end (bounded by `timeout`)."""
        return subprocess.run(self.argv(argv), timeout=timeout, **kwargs)

    def cut(self) -> None:
        """Pull the cable: this machine's end of the link goes down, nothing passes."""
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_if, "up")

    def pids(self) -> list[int]:
        """Every process inside the namespace (only those started through it can be)."""
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]


def _free_subnet() -> int:
    """A third octet whose 10.211.N.0/30 no interface here uses."""
    used = _ip("-o", "-4", "addr", "show").stdout
    start = (os.getpid() * 7 + next(_counter)) % 250
    for i in range(250):
        n = (start + i) % 250 + 1
        if f" {SUBNET_PREFIX}.{n}." not in used:
            return n
    raise RuntimeError(f"every {SUBNET_PREFIX}.N.0/30 block is in use on this machine")


def _create(host: NetnsHost) -> None:
    _ip("netns", "add", host.name)
    _ip("link", "add", host.host_if, "type", "veth", "peer", "name", host.ns_if)
    _ip("link", "set", host.ns_if, "netns", host.name)
    _ip("addr", "add", f"{host.host_addr}/30", "dev", host.host_if)
    _ip("link", "set", host.host_if, "up")
    inside = ["ip", "netns", "exec", host.name, "ip"]
    for args in (
        ["addr", "add", f"{host.ns_addr}/30", "dev", host.ns_if],
        ["link", "set", host.ns_if, "up"],
        ["link", "set", "lo", "up"],
    ):
        subprocess.run([*inside, *args], capture_output=True, text=True, check=True, timeout=30)


def _remove(host: NetnsHost) -> None:
    """Kill what runs inside, then delete the link and the namespace, by name. Each step
    goes on when an earlier one failed (a half-made host is removed too)."""
    for proc in host.processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    for pid in host.pids():  # descendants of ours that left their process group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _ip("link", "del", host.host_if, check=False)  # deletes its peer too
    _ip("netns", "del", host.name, check=False)


@contextlib.contextmanager
def netns_host() -> Iterator[NetnsHost]:
    """A fresh test host, removed at the end of the block whatever happens; skips the
    test (with the reason) where network namespaces cannot be made."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"no network namespaces here: {reason}")
    n = _free_subnet()
    tag = f"{os.getpid() % 100000}{next(_counter) % 100}"
    host = NetnsHost(
        name=f"podium-t{tag}",
        host_if=f"pdh{tag}",  # interface names have at most 15 characters
        ns_if=f"pdn{tag}",
        host_addr=f"{SUBNET_PREFIX}.{n}.1",
        ns_addr=f"{SUBNET_PREFIX}.{n}.2",
    )
    try:
        _create(host)
        yield host
    finally:
        _remove(host)
