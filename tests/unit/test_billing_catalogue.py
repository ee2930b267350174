"""The plan catalogue (defaults and an override file checked at boot), when sending stops, and
how a Stripe subscription object becomes a snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ywmessaging.billing import catalogue
from ywmessaging.billing.state import BillingState, stopped_because
from ywmessaging.billing.stripe_types import Subscription
from ywmessaging.billing.subscriptions import Snapshot
from ywmessaging.config import Settings
from ywmessaging.errors import ConfigError

NOW = datetime(2026, 6, 1, tzinfo=UTC)
GRACE = timedelta(days=7)


def test_the_default_catalogue_is_the_old_systems_plans() -> None:
    c = catalogue.load(None)
    assert c.codes() == ("starter", "growth", "pro")
    got = {p.code: (p.monthly_cents, p.annual_cents, p.limits.as_json()) for p in c.plans}
    assert got == {
        "starter": (4900, 47040, {"branches": 1, "members": 500, "messages_per_month": 1000,
                                  "co_admins": 1}),
        "growth": (7900, 75840, {"branches": 5, "members": 2000, "messages_per_month": 5000,
                                 "co_admins": 3}),
        "pro": (12900, 123840, {"branches": 10, "members": None, "messages_per_month": None,
                                "co_admins": 3}),
    }
    assert (c.number_setup_fee_cents, c.trial_plan, c.trial_days) == (50, "starter", 14)
    # a code no longer sold keeps the trial plan's limits rather than none
    assert c.plan("legacy").limits == c.plan("starter").limits


def test_an_override_file_replaces_the_plans(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text('trial_plan = "basic"\n[[plans]]\ncode = "basic"\nmonthly_cents = 100\n'
                    'annual_cents = 1000\nlimits = { members = 10 }\n')
    c = catalogue.load(path)
    assert c.codes() == ("basic",) and c.plan("basic").limits.members == 10
    assert c.plan("basic").limits.branches is None            # left out: unlimited
    Settings(billing_catalogue=path).validate()


@pytest.mark.parametrize(("text", "says"), [
    ('{"plans": []}', "non-empty"),
    ('{"plans": [{"code": "Bad Code", "monthly_cents": 1, "annual_cents": 1}]}', "code"),
    ('{"plans": [{"code": "a", "monthly_cents": -1, "annual_cents": 1}]}', "monthly_cents"),
    ('{"plans": [{"code": "a", "monthly_cents": 1, "annual_cents": 1, '
     '"limits": {"seats": 1}}]}', "limits"),
    ('{"plans": [{"code": "a", "monthly_cents": 1, "annual_cents": 1}], '
     '"trial_plan": "b"}', "trial_plan"),
    ('{"plans": [{"code": "a", "monthly_cents": 1, "annual_cents": 1}, '
     '{"code": "a", "monthly_cents": 1, "annual_cents": 1}], "trial_plan": "a"}', "unique"),
    ("{not json", "cannot read"),
])
def test_a_bad_override_stops_the_boot_with_a_clear_sentence(tmp_path: Path, text: str,
                                                            says: str) -> None:
    path = tmp_path / "plans.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        Settings(billing_catalogue=path).validate()


def _state(status: str, **kw: object) -> BillingState:
    base: dict[str, object] = dict(
        plan="starter", billing_cycle=None, subscription_status=status, trial_ends_at=None,
        current_period_end=None, cancel_at_period_end=False, past_due_since=None,
        stripe_customer_id=None, stripe_subscription_id=None, stripe_subscription_created=None)
    base.update(kw)
    return BillingState(**base)  # type: ignore[arg-type]


def test_when_sending_stops() -> None:
    day = timedelta(days=1)
    assert stopped_because(_state("trialing", trial_ends_at=NOW + day), NOW, GRACE) is None
    assert stopped_because(_state("trialing", trial_ends_at=NOW - day), NOW,
                           GRACE) == "trial_ended"
    assert stopped_because(_state("active"), NOW, GRACE) is None
    assert stopped_because(_state("past_due", past_due_since=NOW - 6 * day), NOW, GRACE) is None
    assert stopped_because(_state("past_due", past_due_since=NOW - 8 * day), NOW,
                           GRACE) == "past_due"
    assert stopped_because(_state("canceled", current_period_end=NOW + day), NOW, GRACE) is None
    assert stopped_because(_state("canceled", current_period_end=NOW - day), NOW,
                           GRACE) == "canceled"
    assert stopped_because(_state("unpaid"), NOW, GRACE) == "unpaid"
    assert stopped_because(_state("incomplete", trial_ends_at=NOW + day), NOW, GRACE) is None


def test_a_stripe_subscription_becomes_a_snapshot() -> None:
    sub = {"id": "sub_1", "customer": "cus_1", "status": "active", "created": 1_700_000_000,
           "cancel_at_period_end": True, "trial_end": None,
           "items": {"data": [{"current_period_end": 1_702_592_000,
                               "price": {"lookup_key": "growth_annual",
                                         "recurring": {"interval": "year"}}}]}}
    snap = Snapshot.of(Subscription.of(sub))
    assert (snap.plan, snap.cycle, snap.status, snap.cancel_at_period_end) == (
        "growth", "annual", "active", True)
    assert snap.current_period_end == datetime.fromtimestamp(1_702_592_000, UTC)
    with pytest.raises(ValueError):
        Snapshot(subscription_id="s", customer_id="c", status="weird", created=NOW,
                 plan="starter", cycle="monthly")
