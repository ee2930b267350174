"""Helpers shared by the operator commands."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..errors import ConfigError, OperationError


@asynccontextmanager
async def registry_pool(settings: Settings, max_size: int = 4) -> AsyncIterator[Any]:
    """A small pool on the registry for one command; a clear error if it does not answer."""
    target = PgTarget.parse(settings.require_database_url())
    try:
        pool = await pg.create_pool(target, max_size=max_size)
        try:
            await pool.fetchval("SELECT 1", timeout=pg.CONNECT_TIMEOUT)
        except BaseException:
            pool.terminate()
            raise
    except (OSError, TimeoutError) as exc:
        raise OperationError(f"registry database {target.describe()} does not answer: {exc}"
                             ) from exc
    except Exception as exc:
        raise OperationError(f"cannot open registry database {target.describe()}: "
                             f"{str(exc).splitlines()[0]}") from exc
    try:
        yield pool
    finally:
        await pool.close()


def secret_box(settings: Settings) -> SecretBox:
    """The SecretBox for this deployment's key."""
    return SecretBox(settings.require_secret_key())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def parse_id(text: str, what: str) -> uuid.UUID:
    """An id given on the command line (a one-line error naming `what` when it is not one)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ConfigError(f"not a {what} id: {text!r}") from None
