"""Tiny handler modules that the worker e2e tests run in real worker processes."""
