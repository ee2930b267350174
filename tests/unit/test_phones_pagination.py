"""Phone normalization and the generic keyset cursor."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from ywmessaging.church.members import escape_like
from ywmessaging.church.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
    page,
    parse_limit,
)
from ywmessaging.church.phones import (
    MAX_INPUT,
    InvalidPhone,
    digits_fragment,
    needs_region,
    normalize_phone,
)
from ywmessaging.errors import ValidationFailed


@pytest.mark.parametrize(("raw", "region", "want"), [
    ("(213) 373-4253", "US", "+12133734253"),
    ("213.373.4253", "US", "+12133734253"),
    ("+1 213 373 4253", "GB", "+12133734253"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 20 7946 0958", "US", "+442079460958"),
    ("\uff0b1 213 373 4253", "US", "+12133734253"),  # full-width plus, NFKC
    ("213-373-4253", "bogus", "+12133734253"),      # an unusable region falls back to US
])
def test_phones_normalize_to_e164(raw: str, region: str, want: str) -> None:
    assert normalize_phone(raw, region) == want


@pytest.mark.parametrize("raw", ["", "   ", "12", "hello", "+1 555 0100", "1" * 40,
                                 "+999 123 456 789", "020 7946 0958"])
def test_invalid_phones_are_422_invalid_phone(raw: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, "US")
    assert (info.value.status, info.value.code) == (422, "invalid_phone")
    assert info.value.extra["field"] == "phone"


def test_input_length_limit_is_inclusive() -> None:
    longest = "+1 (213) 373-4253 ext. 123456789"
    assert len(longest) == MAX_INPUT == 32
    assert normalize_phone(longest, "US") == "+12133734253"
    with pytest.raises(InvalidPhone):
        normalize_phone(longest + "0", "US")


@pytest.mark.parametrize("raw", ["", "1" * 40, "hello", "+1 555 0100"])
def test_invalid_phone_detail_names_the_field(raw: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, "US", field="mobile")
    assert info.value.extra["field"] == "mobile"
    assert info.value.detail is not None and info.value.detail.startswith("mobile ")


def test_region_needed_only_for_national_numbers() -> None:
    assert needs_region("(213) 373-4253")
    assert not needs_region(" +1 213 373 4253")


@pytest.mark.parametrize(("search", "want"), [
    ("373-42", "37342"), ("(213)", "213"), ("+1 213", "+1213"), ("12", "12"), ("Ann", None),
    ("2_3%4", None), ("+", None), ("- ", None),
])
def test_digits_fragment(search: str, want: str | None) -> None:
    assert digits_fragment(search) == want


def test_like_wildcards_are_escaped() -> None:
    assert escape_like(r"50%_off\now") == r"50\%\_off\\now"


def test_cursor_round_trip_keeps_types() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    ident = uuid.uuid4()
    token = encode_cursor("things:created:asc", [when, ident])
    assert "=" not in token and "+" not in token and "/" not in token
    assert decode_cursor(token, "things:created:asc", ("timestamp", "uuid")) == (when, ident)
    names = encode_cursor("k", ["O'Brien", "Zoë", 7])
    assert decode_cursor(names, "k", ("text", "text", "int")) == ("O'Brien", "Zoë", 7)


def test_cursor_keeps_the_offset_of_a_timestamp() -> None:
    when = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    token = encode_cursor("k", [when])
    assert decode_cursor(token, "k", ("timestamp",)) == (when,)


def _raw(doc: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


@pytest.mark.parametrize("token", [
    "", "!!!", "not base64 at all", "a" * 2000,
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),               # not JSON
    _raw([1, 2]),                                                  # not an object
    _raw({"k": "other", "v": ["x", "y", str(uuid.uuid4())]}),      # another list's cursor
    _raw({"k": "members:name:asc", "v": ["x", str(uuid.uuid4())]}),  # wrong length
    _raw({"k": "members:name:asc", "v": ["x", 3, str(uuid.uuid4())]}),  # wrong type
    _raw({"k": "members:name:asc", "v": ["x", "y", "not-a-uuid"]}),
    _raw({"k": "members:name:asc", "v": ["x", "y", str(uuid.uuid4())], "extra": 1}),
])
def test_bad_cursors_are_400_invalid_cursor(token: str) -> None:
    with pytest.raises(InvalidCursor) as info:
        decode_cursor(token, "members:name:asc", ("text", "text", "uuid"))
    assert (info.value.status, info.value.code) == (400, "invalid_cursor")


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00", "yesterday", 5, True])
def test_bad_cursor_timestamps_are_refused(value: object) -> None:
    token = _raw({"k": "k", "v": [value]})
    with pytest.raises(InvalidCursor):
        decode_cursor(token, "k", ("timestamp",))


def test_bool_is_not_an_int_in_a_cursor() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(_raw({"k": "k", "v": [True]}), "k", ("int",))


def test_limit_parsing() -> None:
    assert parse_limit(None) == DEFAULT_LIMIT
    assert parse_limit("1") == 1 and parse_limit(str(MAX_LIMIT)) == MAX_LIMIT
    for bad in ("0", str(MAX_LIMIT + 1), "-1", "ten", "1.5", "", "٣"):
        with pytest.raises(ValidationFailed):
            parse_limit(bad)


def test_page_gives_a_cursor_only_when_more_rows_exist() -> None:
    rows = [{"n": i} for i in range(4)]
    items, cursor = page(rows, 3, "k", lambda r: (r["n"],))
    assert items == rows[:3]
    assert cursor is not None and decode_cursor(cursor, "k", ("int",)) == (2,)
    assert page(rows[:3], 3, "k", lambda r: (r["n"],)) == (rows[:3], None)
    assert page([], 3, "k", lambda r: (r["n"],)) == ([], None)
