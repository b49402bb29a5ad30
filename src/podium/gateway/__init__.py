"""The gateway: an ASGI app that speaks RunPod's client API and worker protocol."""

from podium.gateway.app import create_app

__all__ = ["create_app"]
