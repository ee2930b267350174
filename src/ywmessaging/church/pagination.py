"""Keyset pagination: opaque cursors and page assembly, for any list sorted by a key + id.

A cursor is base64url (unpadded) of a compact JSON document `{"k": kind, "v": [values]}`:
`kind` names the list and its order (e.g. `members:name:asc`), so a cursor from one list or
order is refused by another; `values` are the sort key of the last row served, ending with
its id. Decoding checks every value against the expected types; anything else (garbage,
tampering, another list's cursor) is 400 `invalid_cursor`. Cursors are not signed: a forged
but well-formed one only moves the window inside the caller's own church.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from ..errors import BadRequest, ValidationFailed

MAX_CURSOR = 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

CursorValue = str | int | datetime | uuid.UUID


class InvalidCursor(BadRequest):
    code, title = "invalid_cursor", "The cursor is not valid for this list"


def _plain(value: Any) -> str | int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("cursor timestamps must be timezone-aware")
        return value.isoformat()
    if isinstance(value, bool):
        raise TypeError("booleans are not cursor values")
    if isinstance(value, int | str):
        return value
    return str(value)  # uuid.UUID and asyncpg's UUID


def encode_cursor(kind: str, values: Sequence[Any]) -> str:
    """The opaque cursor for a position in the list `kind`."""
    raw = orjson.dumps({"k": kind, "v": [_plain(v) for v in values]})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _as_text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    return v


def _as_int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError
    return v


def _as_uuid(v: Any) -> uuid.UUID:
    return uuid.UUID(_as_text(v))


def _as_datetime(v: Any) -> datetime:
    out = datetime.fromisoformat(_as_text(v))
    if out.tzinfo is None:
        raise ValueError
    return out


CONVERTERS: Mapping[str, Callable[[Any], CursorValue]] = {
    "text": _as_text, "int": _as_int, "uuid": _as_uuid, "timestamp": _as_datetime,
}


def decode_cursor(token: str, kind: str, types: Sequence[str]) -> tuple[CursorValue, ...]:
    """The key values of `token` for the list `kind`, typed as `types` (names in CONVERTERS)."""
    if not token or len(token) > MAX_CURSOR:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if not isinstance(doc, dict) or doc.get("k") != kind or set(doc) != {"k", "v"}:
        raise InvalidCursor()
    values = doc["v"]
    if not isinstance(values, list) or len(values) != len(types):
        raise InvalidCursor()
    try:
        return tuple(CONVERTERS[t](v) for t, v in zip(types, values, strict=True))
    except (ValueError, TypeError):
        raise InvalidCursor() from None


def parse_limit(raw: str | None) -> int:
    """`limit` from a query string: 1..MAX_LIMIT, DEFAULT_LIMIT when absent (else 422)."""
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def page(rows: Sequence[Any], limit: int, kind: str,
         key: Callable[[Any], Sequence[Any]]) -> tuple[list[Any], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor of the next one (or None)."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    return items, encode_cursor(kind, key(items[-1]))
