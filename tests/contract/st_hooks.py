"""Schemathesis hooks of the contract test (loaded with SCHEMATHESIS_HOOKS=tests.contract.st_hooks).

`openapi.yaml` says everything a schema can say, and the server checks requests against it, so
a schema-valid request that the server refuses is a difference to fix. The only exceptions are
refusals that depend on what no schema can hold: rows that must exist, the clock, the tables of
the libraries (time zones, phone regions, the numbering plan), what the server issued (cursors,
tokens, one-time codes), the password policy's list of common passwords, and comparisons of two
fields (quiet hours' start and end must differ; a usage range's `from` comes before its `to`
and spans at most 366 days: JSON Schema cannot compare two values). Each has its own
stable code, and only a refusal whose every error carries one of them is accepted here; any
other refusal of a schema-valid request still fails the run.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

# Problem `code`s of refusals that depend on state or on the server's tables.
STATEFUL_PROBLEMS = frozenset({
    "invalid_cursor",        # a cursor the list did not give
    "invalid_reset_token",   # a reset link the server did not send
    "invalid_invitation",    # an invitation the server did not send
    "invalid_mfa_code",      # a TOTP code is right for one 30-second window only
    "weak_password",         # the policy reads a list of common passwords
    # What a CSV file holds: a multipart file is bytes that no schema looks into.
    "invalid_encoding", "empty_file", "missing_phone_column", "duplicate_column",
    "too_many_rows",
    "invalid_phone",         # phonenumbers' numbering plan decides
    "export_in_progress",    # one full export at a time: the previous call's may still run
    "deletion_not_scheduled",  # cancelling a deletion needs one scheduled before
    "pco_not_connected",     # Planning Center sync and disconnect need a connection first
})
# `errors[].code`s of 422 `validation_failed` that depend on state or on the server's tables.
STATEFUL_FIELD_CODES = frozenset({
    "not_found",             # an id that names no row of this church
    "unknown_time_zone",     # zoneinfo and PostgreSQL decide
    "unknown_region",        # phonenumbers decides
    "invalid_phone",         # phonenumbers' numbering plan decides
    "out_of_range",          # a time relative to now (send_at)
    "invalid_rule",          # a recurring change checked against the stored rule
    "empty_window",          # quiet hours' start equal to their end (two fields compared)
    "empty_range",           # a usage range's `from` after its `to` (two fields compared,
    "range_too_long",        # or their span; `to` defaults to today: the clock)
    "unknown_plan",          # the deployment's plan catalogue (YWM_BILLING_CATALOGUE)
})


def _problem(response: Any) -> dict[str, Any]:
    try:
        doc = json.loads(response.content)
    except (ValueError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def accepted_refusal(status: int, problem: dict[str, Any]) -> bool:
    """Whether a refusal of schema-valid data is one a schema cannot foresee."""
    code = problem.get("code")
    if code in STATEFUL_PROBLEMS:
        return True
    if status != 422 or code != "validation_failed":
        return False
    errors = problem.get("errors") or []
    return bool(errors) and all(e.get("code") in STATEFUL_FIELD_CODES for e in errors)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a documented, state-dependent refusal of valid data."""
    if getattr(failure, "code", None) != "ST202":   # "Schema-valid request rejected"
        return True
    return not accepted_refusal(response.status_code, _problem(response))


# Positive cases draw the values that only the server's tables or the clock make valid from
# those tables (a dialable phone, a real zone and region, a time tomorrow), so the rest of a
# valid body reaches the server and resources really get created.
_PHONES = itertools.count()


def _positive_value(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name == "phone":
        return f"+1213373{next(_PHONES) % 10000:04d}"   # Los Angeles: every line dialable
    if name in ("timezone", "time_zone"):
        return "America/Chicago"
    if name == "default_region":
        return "US"
    if name == "send_at":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return value


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """In positive cases, swap table- and clock-bound values for real ones (see above)."""
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    case.body = {k: _positive_value(k, v) for k, v in case.body.items()}
    return case
