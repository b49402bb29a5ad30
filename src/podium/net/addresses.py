"""Refuse outgoing requests to private, loopback and link-local addresses (SSRF guard)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["is_public_url", "resolve_public"]


def _public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def resolve_public(url: str) -> bool:
    """True when every address the URL's host resolves to is a public one."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(_public(str(info[4][0])) for info in infos)


def is_public_url(url: str) -> bool:
    """Synchronous check for a literal IP host (names need resolve_public)."""
    host = urlsplit(url).hostname or ""
    try:
        return _public(host)
    except ValueError:
        return True  # a name: decided at resolution time
