"""`python -m podium.worker [MODULE:FUNCTION]`: the same as `podium worker`, without Typer.

The handler comes from the argument or PODIUM_WORKER_HANDLER; everything else from the
flags below or the environment (podium.worker.config).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from podium.worker.config import ConfigError, WorkerConfig
from podium.worker.handlers import load_handler
from podium.worker.runtime import serve


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m podium.worker",
        description="Run a worker that pulls jobs from a Podium gateway (or from RunPod, "
        "by RUNPOD_* environment variables).",
    )
    p.add_argument("handler", nargs="?", help="MODULE:FUNCTION or FILE.py:FUNCTION")
    p.add_argument("--gateway", help="gateway URL (env PODIUM_GATEWAY)")
    p.add_argument("--endpoint", help="endpoint id (env RUNPOD_ENDPOINT_ID)")
    p.add_argument("--token", help="worker token (env RUNPOD_AI_API_KEY)")
    p.add_argument("--template", choices=["sd15"], help="a built-in handler")
    p.add_argument("--model", help="model for --template (env PODIUM_SD_MODEL)")
    p.add_argument("--concurrency", type=int, help="jobs at once (env PODIUM_WORKER_CONCURRENCY)")
    p.add_argument("--batch-size", type=int, help="jobs per take (env PODIUM_WORKER_BATCH_SIZE)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = WorkerConfig.from_env(
            gateway=args.gateway,
            endpoint_id=args.endpoint,
            token=args.token,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
        )
        spec = args.handler or os.environ.get("PODIUM_WORKER_HANDLER")
        if args.template != "sd15" and not spec:
            raise ConfigError(
                "Give a handler as MODULE:FUNCTION (or set PODIUM_WORKER_HANDLER), "
                "or --template sd15."
            )
    except ConfigError as exc:
        print(f"podium.worker: {exc.message}", file=sys.stderr)
        return 2

    def build() -> Any:
        if args.template == "sd15":
            from podium.sd.handler import build as build_sd

            return build_sd(args.model)  # None: PODIUM_SD_MODEL, else "auto"
        return load_handler(spec or "")

    return serve(config, build)


if __name__ == "__main__":
    sys.exit(main())
