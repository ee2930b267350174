"""structlog set-up: JSON lines (orjson) or a console renderer, ISO UTC timestamps, no secrets."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import structlog
from aiohttp import web

from ..config import Settings
from ..keys import SETTINGS

# Field names (or name endings) whose values never reach a log line.
_SECRET_ENDINGS = (
    "password", "passwd", "secret", "secret_key", "token", "authorization", "cookie",
    "api_key", "dsn", "database_url", "private_key",
)
_HANDLER_NAME = "ywm"


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any secret-looking field with `***`."""
    for key in event_dict:
        if key.lower().endswith(_SECRET_ENDINGS):
            event_dict[key] = "***"
    return event_dict


def _orjson_text(obj: Any, **kw: Any) -> str:
    return orjson.dumps(obj, default=kw.get("default")).decode()


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def configure(settings: Settings, *, stderr: bool = False) -> None:
    """Configure structlog (and route stdlib logging through it) as `settings` say.

    `stderr=True` is for commands whose stdout is their output (`--json` listings).
    """
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    as_json = settings.log_format == "json"
    tail: list[Any] = [structlog.processors.StackInfoRenderer(),
                       structlog.processors.format_exc_info]
    renderer: Any
    factory: Any
    if as_json:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stderr.buffer if stderr else None)
    else:
        renderer = structlog.dev.ConsoleRenderer()
        factory = structlog.PrintLoggerFactory(sys.stderr if stderr else None)
    structlog.configure(
        processors=[*_shared_processors(), *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        # Not cached: a later configure() (tests, `ywm dev` after start-up) must take effect.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level, as_json, stderr)


def _route_stdlib(level: int, as_json: bool, stderr: bool) -> None:
    """Render aiohttp's and asyncpg's own log records the same way, on the same stream."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if as_json else structlog.dev.ConsoleRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StdStreamHandler(stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries (yoyo, pgserver, asyncpg, aiohttp) chatter at info: show them from warning up,
    # everything when debugging.
    root.setLevel(level if level == logging.DEBUG else max(level, logging.WARNING))


class _StdStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout`/`sys.stderr` is at the time (test capture replaces it)."""

    def __init__(self, stderr: bool) -> None:
        self._use_stderr = stderr
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr if self._use_stderr else sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


async def logging_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: configure logging before any other resource opens."""
    configure(app[SETTINGS])
    yield
