"""The `ywm` command: argument parsing only; each command lives in its own `commands/` module."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from .commands import devdeploy
from .config import Settings
from .db.migrations import MigrationError
from .db.queries import QueryError
from .errors import ConfigError, OperationError

# Each module defines `register(subparsers)`, which adds its commands and sets `func` to a
# callable `(args, settings) -> int` (sync) or a coroutine function of the same shape.
COMMAND_MODULES = ("dev", "serve", "migrate", "tenants", "servers", "sessions", "inbox", "doctor",
                   "env", "worker", "carrier_sim", "stripe_sim", "pco_sim",
                   "billing")


def build_parser() -> argparse.ArgumentParser:
    """The full `ywm` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ywm", description="YWMESSAGING: texting for churches, one database per church."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, build settings, run; known failures are one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    dev_handle: Any = None
    try:
        settings = Settings.from_env()
        if args.command not in ("serve", "dev"):
            # operator commands print their results on stdout; their logs go to stderr
            from .observability.logs import configure

            configure(settings, stderr=True)
        if args.command in devdeploy.DEV_AWARE_COMMANDS:
            found = devdeploy.attach(settings)
            if found is not None:
                settings, dev_handle = found
                print(f"ywm: DATABASE_URL and YWM_SECRET_KEY are unset: using the ywm dev "
                      f"deployment in {settings.data_dir}", file=sys.stderr)
        result = args.func(args, settings)
        if asyncio.iscoroutine(result):
            result = _run(result)
        sys.stdout.flush()   # a closed pipe shows here, inside the handler below
        return int(result or 0)
    except BrokenPipeError:
        # the reader went away (`ywm env | head`): what it read is what it wanted; keep the
        # interpreter's last flush from failing again on the dead pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        print(f"ywm: {exc}", file=sys.stderr)
        return 2
    except (OperationError, MigrationError, QueryError) as exc:
        print(f"ywm: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        # a server that does not answer, a file that cannot be read: one line, not a traceback
        print(f"ywm: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ywm: interrupted", file=sys.stderr)
        return 130
    finally:
        if dev_handle is not None:
            dev_handle.cleanup()   # stops its PostgreSQL only if `ywm dev` is not using it


def _run(coro: object) -> object:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
