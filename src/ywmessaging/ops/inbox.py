"""The webhook inbox for operators: list stored events, and replay failed ones.

A replay makes events due again with a fresh count of attempts, then processes them here, one
by one, exactly as the API's and the workers' sweepers do (claimed first, so an event another
process took meanwhile is left to it; the church database's own dedupe makes a replay of an
applied event change nothing, and a Stripe event re-applies the subscription as Stripe has it
now).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..auth.plugins import email_sender
from ..billing.stripe_client import StripeBilling
from ..billing.webhooks import PROVIDER as STRIPE
from ..billing.webhooks import StripeInbox
from ..config import Settings
from ..crypto import SecretBox
from ..messaging.webhooks import Outcome, process_by_id
from ..sqlq import registry as rq
from ..tenants.runtime import open_supervisor


@dataclass(frozen=True)
class Replayed:
    """One event made due again, and how processing it here ended (None: taken elsewhere)."""

    id: int
    event_id: str
    event_type: str
    outcome: Outcome | None


async def list_events(pool: Any, settings: Settings, *, failed: bool, limit: int) -> list[Any]:
    """The newest stored events (only failed or given-up ones when `failed`)."""
    rows: list[Any] = await rq(settings.sql_dir).list_inbox_events(pool, failed, limit)
    return rows


async def requeue(pool: Any, settings: Settings, *, ids: list[int],
                  all_failed: bool) -> list[Any]:
    """Make events due now (the given failed or ignored ones, or every failed one)."""
    rows: list[Any] = await rq(settings.sql_dir).requeue_inbox_events(pool, ids, all_failed)
    return rows


async def replay(pool: Any, settings: Settings, box: SecretBox, *, ids: list[int],
                 all_failed: bool) -> list[Replayed]:
    """Requeue, then process each requeued event in this process."""
    rows = await requeue(pool, settings, ids=ids, all_failed=all_failed)
    if not rows:
        return []
    runtime = await open_supervisor(settings, box, pool, kind="cli")
    stripe: StripeInbox | None = None
    try:
        done = []
        for row in rows:
            if row["provider"] == STRIPE:
                if stripe is None:   # only when a Stripe event is replayed
                    stripe = StripeInbox(pool, runtime.supervisor.lease, settings,
                                         StripeBilling(settings), email_sender(settings))
                outcome = await stripe.process_by_id(row["id"])
            else:
                outcome = await process_by_id(pool, runtime.supervisor, settings, row["id"])
            done.append(Replayed(row["id"], row["event_id"], row["event_type"], outcome))
        return done
    finally:
        if stripe is not None:
            await stripe.stripe.close()
            closer = getattr(stripe.emails, "close", None)
            if closer is not None:
                await closer()
        await runtime.close()
