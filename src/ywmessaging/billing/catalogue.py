"""The plan catalogue: prices in cents and limits, the one place a deployment changes them.

The defaults below are the old system's plans. A deployment may replace them with a JSON or
TOML file named by `YWM_BILLING_CATALOGUE` (same shape as `DEFAULT` as JSON: `plans` is the
whole list, the other keys are optional); the file is read and checked when settings are
validated, so a bad file stops the boot with one clear sentence. A limit of None (JSON null, or
left out in TOML) is unlimited.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError

LIMITS = ("branches", "members", "messages_per_month", "co_admins")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAX = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    """What a plan allows; None is unlimited."""

    branches: int | None
    members: int | None
    messages_per_month: int | None
    co_admins: int | None

    def of(self, name: str) -> int | None:
        """One limit by its name (one of LIMITS)."""
        value: int | None = getattr(self, name)
        return value

    def as_json(self) -> dict[str, int | None]:
        """The API shape."""
        return {name: self.of(name) for name in LIMITS}


@dataclass(frozen=True)
class Plan:
    """One plan: its code (Stripe price lookup keys are `<code>_monthly`, `<code>_annual`)."""

    code: str
    name: str
    monthly_cents: int
    annual_cents: int
    limits: Limits

    def as_json(self) -> dict[str, Any]:
        """The API shape."""
        return {"code": self.code, "name": self.name, "monthly_cents": self.monthly_cents,
                "annual_cents": self.annual_cents, "limits": self.limits.as_json()}


@dataclass(frozen=True)
class Catalogue:
    """Every plan, the one-time fee per phone number, and what a trial gets."""

    plans: tuple[Plan, ...]
    number_setup_fee_cents: int
    trial_plan: str
    trial_days: int

    def plan(self, code: str) -> Plan:
        """The plan of this code; an unknown code (a plan removed from the catalogue) gets the
        trial plan's limits under its own code, so a church is never left without limits."""
        for p in self.plans:
            if p.code == code:
                return p
        trial = self.plan(self.trial_plan)
        return Plan(code, code, 0, 0, trial.limits)

    def codes(self) -> tuple[str, ...]:
        """The plan codes in catalogue order."""
        return tuple(p.code for p in self.plans)


DEFAULT: dict[str, Any] = {
    "plans": [
        {"code": "starter", "name": "Starter", "monthly_cents": 4_900, "annual_cents": 47_040,
         "limits": {"branches": 1, "members": 500, "messages_per_month": 1_000,
                    "co_admins": 1}},
        {"code": "growth", "name": "Growth", "monthly_cents": 7_900, "annual_cents": 75_840,
         "limits": {"branches": 5, "members": 2_000, "messages_per_month": 5_000,
                    "co_admins": 3}},
        {"code": "pro", "name": "Pro", "monthly_cents": 12_900, "annual_cents": 123_840,
         "limits": {"branches": 10, "members": None, "messages_per_month": None,
                    "co_admins": 3}},
    ],
    "number_setup_fee_cents": 50,
    "trial_plan": "starter",
    "trial_days": 14,
}

CURRENCY = "usd"
# The lookup key of the one-time price a phone number's setup fee is charged with
NUMBER_SETUP_LOOKUP_KEY = "number_setup"


def _count(where: str, value: Any, *, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
        raise ConfigError(f"{where} must be a whole number from 0 to {_MAX}"
                          + (" or null (unlimited)" if nullable else ""))
    return value


def _plan(i: int, raw: Any) -> Plan:
    where = f"plans[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table/object")
    unknown = set(raw) - {"code", "name", "monthly_cents", "annual_cents", "limits"}
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise ConfigError(f"{where}.code must be lower-case letters, digits and _ (1-32)")
    name = raw.get("name", code)
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise ConfigError(f"{where}.name must be 1-100 characters")
    limits = raw.get("limits", {})
    if not isinstance(limits, dict) or set(limits) - set(LIMITS):
        raise ConfigError(f"{where}.limits may hold only {', '.join(LIMITS)}")
    return Plan(code, name,
                _count(f"{where}.monthly_cents", raw.get("monthly_cents"), nullable=False) or 0,
                _count(f"{where}.annual_cents", raw.get("annual_cents"), nullable=False) or 0,
                Limits(*(_count(f"{where}.limits.{n}", limits.get(n), nullable=True)
                         for n in LIMITS)))


def parse(doc: Any) -> Catalogue:
    """Check a catalogue document (ConfigError naming the first bad key)."""
    if not isinstance(doc, dict):
        raise ConfigError("the catalogue must be an object/table")
    unknown = set(doc) - set(DEFAULT)
    if unknown:
        raise ConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
    raw_plans = doc.get("plans")
    if not isinstance(raw_plans, list) or not raw_plans:
        raise ConfigError("`plans` must be a non-empty list")
    plans = tuple(_plan(i, p) for i, p in enumerate(raw_plans))
    codes = [p.code for p in plans]
    if len(set(codes)) != len(codes):
        raise ConfigError("plan codes must be unique")
    trial_plan = doc.get("trial_plan", DEFAULT["trial_plan"])
    if trial_plan not in codes:
        raise ConfigError(f"trial_plan {trial_plan!r} is not one of the plans")
    fee = _count("number_setup_fee_cents",
                 doc.get("number_setup_fee_cents", DEFAULT["number_setup_fee_cents"]),
                 nullable=False)
    days = _count("trial_days", doc.get("trial_days", DEFAULT["trial_days"]), nullable=False)
    if not days or days > 365:
        raise ConfigError("trial_days must be between 1 and 365")
    return Catalogue(plans, fee or 0, trial_plan, days)


@lru_cache(maxsize=8)
def load(path: Path | None) -> Catalogue:
    """The default catalogue, or the one in `path` (.json or .toml), checked; read once."""
    if path is None:
        return parse(DEFAULT)
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"YWM_BILLING_CATALOGUE {path}: cannot read it ({exc})") from None
    try:
        return parse(doc)
    except ConfigError as exc:
        raise ConfigError(f"YWM_BILLING_CATALOGUE {path}: {exc}") from None


# The built-in plans and fee (a deployment's own: `load(settings.billing_catalogue)`)
PLANS: tuple[Plan, ...] = parse(DEFAULT).plans
NUMBER_SETUP_FEE_CENTS: int = parse(DEFAULT).number_setup_fee_cents
