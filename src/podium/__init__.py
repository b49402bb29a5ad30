"""Podium: self-hosted serverless inference, wire-compatible with RunPod Serverless."""

__version__ = "0.1.0"
__all__ = ["__version__"]
