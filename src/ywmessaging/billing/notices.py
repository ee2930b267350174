"""Billing emails to a church's owners: the trial ends in three days; a payment failed.

The trial notice is sent by the housekeeping round (worker.py), once per trial: the church is
marked told (`trial_email_sent_at`) before its email goes, so two workers never both send it,
and unmarked again when sending fails, so the next round retries. A webhook handler sends the
payment notices (failed, or waiting for the card holder's confirmation) with
`notify_owners` (billing/webhooks.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from ..auth.emails import Email, EmailSender
from ..config import Settings
from ..sqlq import registry as rq
from ..sqlq import tenant as tq

log = structlog.get_logger("ywm.billing")
TRIAL_NOTICE = timedelta(days=3)


def trial_ending_email(to: str, church: str, ends: datetime, link: str) -> Email:
    """The notice three days before a trial ends."""
    body = (
        f"The free trial of {church}'s church texting account ends on "
        f"{ends:%B %d, %Y} ({ends:%H:%M} UTC).\n\n"
        "Choose a plan before then to keep sending messages. Your members, groups and history "
        f"stay either way.\n\nChoose a plan: {link}\n"
    )
    return Email(to, "Your trial ends in 3 days", body, "trial_ending")


def payment_failed_email(to: str, church: str, grace_days: float, link: str) -> Email:
    """The notice sent when a subscription payment fails."""
    body = (
        f"A payment for {church}'s church texting plan did not go through.\n\n"
        f"Sending stays on for {grace_days:g} days while the payment is retried. Update the card "
        f"to keep sending: {link}\n"
    )
    return Email(to, "A payment failed", body, "payment_failed")


def payment_action_email(to: str, church: str, link: str) -> Email:
    """The notice sent when the bank asks the card holder to confirm a payment."""
    body = (
        f"A payment for {church}'s church texting plan needs the card holder's confirmation "
        "(the bank asked for it).\n\n"
        f"Confirm it to keep sending: {link}\n"
    )
    return Email(to, "A payment needs your confirmation", body, "payment_action_required")


def billing_link(settings: Settings) -> str:
    """Where the frontend shows the church's plan."""
    return f"{settings.frontend_url.rstrip('/')}/settings/billing"


async def notify_owners(lease: Any, settings: Settings, emails: EmailSender,
                        tenant_id: uuid.UUID, make: Callable[[str, str], Email]) -> int:
    """Send `make(to, church name)` to each active owner of the church; how many were sent.
    `lease` is the supervisor's lease (a tenant connection as an async context manager)."""
    q = tq(settings.sql_dir)
    async with lease(tenant_id) as conn:
        owners = [r["email"] for r in await q.billing_owner_emails(conn)]
        church = (await q.get_settings(conn))["church_name"] or "your church"
    for to in owners:
        await emails.send(make(to, church))
    return len(owners)


async def send_trial_endings(registry: Any, lease: Any, settings: Settings,
                             emails: EmailSender, now: datetime) -> int:
    """Tell the owners of every church whose trial ends within TRIAL_NOTICE (once per
    trial); how many churches were told."""
    rq_ = rq(settings.sql_dir)
    told = 0
    for row in await rq_.billing_trials_ending(registry, now + TRIAL_NOTICE, now):
        tenant_id, ends = row["id"], row["trial_ends_at"]
        if await rq_.billing_claim_trial_email(registry, tenant_id) is None:
            continue  # another worker told it
        def make(to: str, church: str, ends: datetime = ends) -> Email:
            return trial_ending_email(to, church, ends, billing_link(settings))

        try:
            await notify_owners(lease, settings, emails, tenant_id, make)
            told += 1
        except Exception as exc:  # the next round tries again
            await rq_.billing_unclaim_trial_email(registry, tenant_id)
            log.warning("billing_trial_email_failed", tenant_id=str(tenant_id),
                        error=type(exc).__name__)
    if told:
        log.info("billing_trial_emails_sent", churches=told)
    return told
