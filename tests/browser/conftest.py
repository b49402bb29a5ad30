"""A real gateway (supervisor on, fast tick, CPU only) and Debian's Chromium driven by
Playwright. Playwright never downloads a browser here: /usr/bin/chromium, or the tests
skip saying so.

Screenshots go to a temporary folder; set PODIUM_SCREENSHOTS_DIR=docs/img to refresh the
ones in the docs (`PODIUM_SCREENSHOTS_DIR=docs/img pytest -m browser tests/browser`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Gateway, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Supervisor passes every 0.2 s; workers ping every second (Gateway's default for e2e).
GATEWAY_ARGS = ["--supervisor-tick-s", "0.2", "--take-hold-s", "2", "--gpus", "none"]


@pytest.fixture(scope="module")
def console_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(
        data_dir=tmp_path_factory.mktemp("console-gw"), port=free_port(), extra_args=GATEWAY_ARGS
    )
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (PODIUM_SCREENSHOTS_DIR, else a temporary folder)."""
    configured = os.environ.get("PODIUM_SCREENSHOTS_DIR")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
