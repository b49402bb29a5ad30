"""Outgoing-network policy shared by webhooks and image URL fetching."""

from podium.net.addresses import is_public_url, resolve_public

__all__ = ["is_public_url", "resolve_public"]
