"""The plan catalogue: plain data a deployment may change (prices in cents, USD).

`ywm billing sync-catalogue` creates one Stripe product per plan and two prices each, found
again by their lookup keys `<code>_monthly` and `<code>_annual`; the number setup fee is a
one-time price with the lookup key `number_setup`.
"""

from __future__ import annotations

from dataclasses import dataclass

CURRENCY = "usd"


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan as sold: its code, name and prices per month and per year (cents)."""

    code: str
    name: str
    monthly_cents: int
    annual_cents: int


PLANS: tuple[Plan, ...] = (
    Plan("starter", "Starter", 4_900, 47_040),
    Plan("growth", "Growth", 7_900, 75_840),
    Plan("pro", "Pro", 12_900, 123_840),
)

# A phone number's one-time setup fee, charged as an invoice item
NUMBER_SETUP_FEE_CENTS = 50
NUMBER_SETUP_LOOKUP_KEY = "number_setup"
