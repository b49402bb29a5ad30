"""`python -m podium.worker [MODULE:FUNCTION]` — and `podium worker`, which hands its
arguments here: the one declaration of the worker's options.

An entry point, light on purpose: a worker's cold start pays for every import here, so
this parses with argparse (not Typer) and imports Podium's SD handler only for
`--template sd15`. The handler comes from the argument or PODIUM_WORKER_HANDLER;
everything else from the flags below or the environment (podium.worker.config).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from podium.endpoints.templates import TEMPLATE_SD15
from podium.errors import ConfigError
from podium.worker.config import WorkerConfig
from podium.worker.handlers import load_handler
from podium.worker.runtime import build_and_run

__all__ = ["main", "run_worker"]


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a worker that pulls jobs from a Podium gateway (or from RunPod, "
        "by RUNPOD_* environment variables).",
    )
    p.add_argument("handler", nargs="?", help="MODULE:FUNCTION or FILE.py:FUNCTION")
    p.add_argument("--gateway", help="gateway URL (env PODIUM_GATEWAY)")
    p.add_argument("--endpoint", help="endpoint id (env RUNPOD_ENDPOINT_ID)")
    p.add_argument("--token", help="worker token (env RUNPOD_AI_API_KEY)")
    p.add_argument("--template", help="a built-in handler: sd15")
    p.add_argument("--model", help="model for --template (env PODIUM_SD_MODEL)")
    p.add_argument("--concurrency", type=int, help="jobs at once (env PODIUM_WORKER_CONCURRENCY)")
    p.add_argument("--batch-size", type=int, help="jobs per take (env PODIUM_WORKER_BATCH_SIZE)")
    p.add_argument(
        "--ship-logs",
        action="store_true",
        help="also send this worker's stdout and stderr to the gateway (`podium logs`)",
    )
    return p


def run_worker(
    handler: str | None = None,
    *,
    gateway: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    template: str | None = None,
    model: str | None = None,
    concurrency: int | None = None,
    batch_size: int | None = None,
    ship_logs: bool = False,
) -> int:
    """Build the config, load the handler, run until stopped; the exit code.
    ConfigError (the message says what to fix) when it cannot start."""

    def configure() -> WorkerConfig:
        return WorkerConfig.from_env(
            gateway=gateway,
            endpoint_id=endpoint,
            token=token,
            concurrency=concurrency,
            batch_size=batch_size,
        )

    config = configure()
    spec = handler or os.environ.get("PODIUM_WORKER_HANDLER")
    if template is not None and template != TEMPLATE_SD15:
        raise ConfigError(f"Unknown template {template!r}; the built-in one is {TEMPLATE_SD15}.")
    if template is None and not spec:
        raise ConfigError(
            "Give a handler as MODULE:FUNCTION (or set PODIUM_WORKER_HANDLER), "
            f"or --template {TEMPLATE_SD15}."
        )

    def build() -> Any:
        if template == TEMPLATE_SD15:
            from podium.sd.handler import build as build_sd

            return build_sd(model)  # None: PODIUM_SD_MODEL, else "auto"
        return load_handler(spec or "")

    # A handler that cannot be built is reported (unhealthy, with the reason) and the
    # process exits EXIT_CANNOT_START: see runtime.build_and_run.
    if not ship_logs:
        return build_and_run(config, build, configure)
    config, stop_shipping = _ship_logs(config)
    try:
        return build_and_run(config, build)
    finally:
        stop_shipping()


def _ship_logs(config: WorkerConfig) -> tuple[WorkerConfig, Callable[[], None]]:
    """`--ship-logs`: this process's output goes to the gateway too, its jobs marked."""
    from podium.logs.markers import new_marker
    from podium.logs.shipper import HttpLogSink, ship_own_output

    url = config.logs_url
    if url is None:
        raise ConfigError(
            f"--ship-logs needs a Podium job-take URL (…/v2/ENDPOINT/job-take/WORKER), "
            f"got {config.take_url!r}: give --gateway and --endpoint."
        )
    marker = new_marker()
    sink = HttpLogSink.at(url, config.token)
    stop = ship_own_output(sink, marker, name=config.worker_id)
    return dataclasses.replace(config, log_marker=marker), stop


def main(argv: Sequence[str] | None = None, prog: str = "python -m podium.worker") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        return run_worker(
            args.handler,
            gateway=args.gateway,
            endpoint=args.endpoint,
            token=args.token,
            template=args.template,
            model=args.model,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            ship_logs=args.ship_logs,
        )
    except ConfigError as exc:
        print(f"{prog}: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
