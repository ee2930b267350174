"""The durable webhook inbox: store verified Telnyx events, then process them idempotently.

`store_event` runs before the HTTP answer (so an acknowledged STOP is never lost);
`process_inbox_row` runs afterwards, in-process right away and again from the sweeper
(`process_due`, also callable from the worker process) for events still due: a church database
that was down, or a receipt that arrived before its sender recorded the carrier message id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import AppError, BadRequest, TenantNotFound, TenantSuspended
from ..events.publisher import Publisher
from ..observability.metrics import Metrics
from ..sqlq import registry as rq
from . import compliance_sync, tendlc
from .inbound import InboundMessage, apply_inbound, inbound_events
from .media import inbound_media
from .numbers_service import ORDER_EVENT, OrderNotYetKnown, settle_order_event
from .queue import enqueue
from .receipts import ReceiptNotYetKnown, apply_receipt, receipt_from_payload
from .telnyx import parse_number_order

# inbound outcomes that queue an automatic reply (STOP/START/HELP)
REPLY_OUTCOMES = frozenset({"opted_out", "opted_in", "help"})

log = structlog.get_logger("ywm.webhooks")
PROVIDER = "telnyx"
LEASE_SECONDS = 60.0          # a claimed event is reclaimed after this if its process died
PROCESS_TIMEOUT = 30.0        # bound on processing one event
MAX_BACKOFF = 300.0
MAX_ATTEMPTS = 2016           # about a week of retries at the maximum backoff
RECEIPT_MAX_ATTEMPTS = 15     # about 90 s waiting for the sender to record the message id
RECEIPT_EVENTS = ("message.sent", "message.finalized")
# One limit for an event id at the endpoint, in the registry's inbox and in every church
# database's inbound_events (and openapi.yaml): what is acknowledged can always be applied.
EVENT_ID_MAX = 128
RETENTION_DAYS = 30   # finished inbox events and outbound message ids are kept this long


class WebhookMalformed(BadRequest):
    code, title = "webhook_malformed", "The webhook body is not a Telnyx event"


@dataclass(frozen=True)
class Outcome:
    """How processing one stored event ended: done, ignored (with reason) or retry later."""

    state: str
    reason: str | None = None
    tenant_id: uuid.UUID | None = None
    retry_in: float | None = None


def scrub_nul(value: Any) -> Any:
    """PostgreSQL jsonb cannot hold U+0000: replace it inside strings."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [scrub_nul(v) for v in value]
    if isinstance(value, dict):
        return {k.replace("\x00", "\ufffd"): scrub_nul(v) for k, v in value.items()}
    return value


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp with a zone, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_envelope(raw: bytes) -> tuple[str, str, datetime | None, str]:
    """(event id, event type, occurred_at, JSON text to store) of a verified body."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise WebhookMalformed("the body is not JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise WebhookMalformed("no `data` object")
    event_id, event_type = event_key(data.get("id"), data.get("event_type"), "data.id",
                                     "data.event_type")
    return event_id, event_type, parse_time(data.get("occurred_at")), storable(raw, doc)


def event_key(event_id: Any, event_type: Any, id_name: str,
              type_name: str) -> tuple[str, str]:
    """A verified event's id and type as the inbox stores them (any provider), or 400
    `webhook_malformed` naming the field: printable strings, the id of 1..EVENT_ID_MAX
    characters, the type of 1..64."""
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= EVENT_ID_MAX \
            or not event_id.isprintable():
        raise WebhookMalformed(f"`{id_name}` must be a printable string of "
                               f"1..{EVENT_ID_MAX} characters")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 64 \
            or not event_type.isprintable():
        raise WebhookMalformed(f"`{type_name}` must be a short printable string")
    return event_id, event_type


def storable(raw: bytes, doc: Any) -> str:
    """The body as the inbox's jsonb can hold it (U+0000 replaced inside strings)."""
    return orjson.dumps(scrub_nul(doc)).decode() if b"\\u0000" in raw else raw.decode()


async def store_event(registry_pool: Any, settings: Settings, raw: bytes,
                      signed_at: int) -> tuple[int | None, str]:
    """Store a verified event: (its inbox row id, or None when it was stored before; its type)."""
    event_id, event_type, occurred_at, text = parse_envelope(raw)
    if occurred_at is None:   # fall back to the signed timestamp for ordering
        occurred_at = datetime.fromtimestamp(signed_at, UTC)
    row_id: int | None = await rq(settings.sql_dir).insert_inbox_event(
        registry_pool, PROVIDER, event_id, event_type, occurred_at, text)
    return row_id, event_type


def backoff(attempts: int, *, base: float = 1.0, cap: float = MAX_BACKOFF) -> float:
    """Seconds before the next try after `attempts` tries."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def _leaser(supervisor: Any) -> Any:
    """Accept a SupervisorRuntime (API/worker wiring) or a bare PoolSupervisor."""
    return getattr(supervisor, "supervisor", supervisor)


async def _route_tenant(registry_pool: Any, settings: Settings, event_type: str,
                        payload: dict[str, Any]) -> uuid.UUID | str:
    """The tenant an event belongs to, or the reason it belongs to none."""
    q = rq(settings.sql_dir)
    if event_type == "message.received":
        to = payload.get("to") or [{}]
        number = to[0].get("phone_number") if isinstance(to, list) and to and \
            isinstance(to[0], dict) else None
        if not isinstance(number, str):
            return "no_to_number"
        tenant = await q.tenant_for_number(registry_pool, number)
        return tenant if tenant is not None else "unknown_number"
    msg_id = payload.get("id")
    if not isinstance(msg_id, str):
        return "no_message_id"
    tenant = await q.tenant_for_carrier_message(registry_pool, msg_id)
    return tenant if tenant is not None else "unknown_message"


def _inbound(row: Any, occurred_at: datetime, payload: dict[str, Any]) -> InboundMessage | None:
    frm = payload.get("from") or {}
    to = (payload.get("to") or [{}])[0]
    sender = frm.get("phone_number") if isinstance(frm, dict) else None
    if not isinstance(sender, str) or not isinstance(to, dict):
        return None
    text = payload.get("text")
    msg_id = payload.get("id")
    return InboundMessage(row["event_id"], occurred_at, sender, str(to.get("phone_number")),
                          text if isinstance(text, str) else "",
                          msg_id[:128] if isinstance(msg_id, str) else None,
                          tuple(inbound_media(payload)))


# What applying an event gives the live events: (type, data) to publish, delivery statuses.
Emitted = tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]


async def _apply(conn: Any, settings: Settings, row: Any, payload: dict[str, Any],
                 emitted: Emitted, *, quiet: bool = False) -> str:
    occurred_at = row["occurred_at"] or datetime.now(UTC)
    if row["event_type"] == "message.received":
        msg = _inbound(row, occurred_at, payload)
        if msg is None:
            return "ignored:malformed_inbound"
        result = await apply_inbound(conn, settings, msg, quiet=quiet)
        emitted[0].extend(inbound_events(msg, result))
        return result.outcome
    receipt = receipt_from_payload(row["event_id"], row["event_type"], occurred_at, payload)
    if receipt is None:
        return "ignored:no_status"
    return await apply_receipt(conn, settings, receipt, emitted[1])


async def _publish(events: Publisher | None, tenant_id: uuid.UUID, occurred_at: datetime | None,
                   emitted: Emitted) -> None:
    """Publish what the applied event changed (after its transaction committed)."""
    if events is None:
        return
    for event_type, data in emitted[0]:
        await events.publish(tenant_id, event_type, data, occurred_at)
    for status in emitted[1]:
        events.status(tenant_id, status)


async def _number_order(registry_pool: Any, supervisor: Any, settings: Settings, row: Any,
                        payload: dict[str, Any], events: Publisher | None = None) -> Outcome:
    """`number_order.complete`: the order's number becomes active, or is freed if it failed."""
    try:
        result, tenant = await settle_order_event(registry_pool, settings,
                                                  _leaser(supervisor).lease, payload)
    except TenantNotFound:
        return Outcome("ignored", "tenant_not_active")
    except AppError as exc:   # the church's database cannot be used now: later
        return Outcome("retry", exc.code, None, backoff(row["attempts"]))
    settled = result in ("activated", "order_failed")
    if settled and tenant is not None and events is not None:
        order = parse_number_order(payload)
        await events.publish(tenant, "number.status", {
            "order_id": order.order_id if order else None,
            "numbers": [{"number": n, "status": s} for n, s in (order.numbers if order else ())],
            "status": "active" if result == "activated" else "failed"}, row["occurred_at"])
    return Outcome("done" if settled else "ignored", result, tenant)


async def _tendlc(registry_pool: Any, supervisor: Any, settings: Settings, row: Any,
                  payload: dict[str, Any]) -> Outcome:
    """`10dlc.brand.update` / `10dlc.campaign.update` / `10dlc.phone_number.update`: the
    church's brand, campaign or number assignment changes (routed by the carrier's id)."""
    try:
        result, tenant = await compliance_sync.apply_event(
            registry_pool, _leaser(supervisor).lease, settings, row["event_type"], payload,
            row["occurred_at"] or datetime.now(UTC))
    except TenantNotFound:
        return Outcome("ignored", "tenant_not_active")
    except AppError as exc:   # the church's database cannot be used now: later
        return Outcome("retry", exc.code, None, backoff(row["attempts"]))
    return Outcome("done" if result == "applied" else "ignored",
                   None if result == "applied" else result, tenant)


async def _process(registry_pool: Any, supervisor: Any, settings: Settings,
                   row: Any, events: Publisher | None = None) -> Outcome:
    doc = orjson.loads(row["payload"])
    payload = doc.get("data", {}).get("payload") or {}
    if row["event_type"] == ORDER_EVENT:
        return await _number_order(registry_pool, supervisor, settings, row, payload, events)
    if row["event_type"] in tendlc.EVENTS:
        return await _tendlc(registry_pool, supervisor, settings, row, payload)
    if row["event_type"] not in ("message.received", *RECEIPT_EVENTS):
        return Outcome("ignored", "unsupported_event_type")
    route = await _route_tenant(registry_pool, settings, row["event_type"], payload)
    if route == "unknown_message":
        raise ReceiptNotYetKnown(str(payload.get("id")))
    if isinstance(route, str):
        return Outcome("ignored", route)
    emitted: Emitted = ([], [])
    try:
        try:
            async with _leaser(supervisor).lease(route) as conn:
                result = await _apply(conn, settings, row, payload, emitted)
        except TenantSuspended:
            # A suspended church still honours STOP/START/HELP and records texts and
            # receipts, but sends nothing: no keyword reply is queued (runbook-lifecycle.md).
            async with _leaser(supervisor).lease(route, suspended_ok=True) as conn:
                result = await _apply(conn, settings, row, payload, emitted, quiet=True)
    except ReceiptNotYetKnown:
        raise
    except TenantNotFound:
        return Outcome("ignored", "tenant_not_active", route)
    except AppError as exc:   # unavailable, capacity, suspended, schema outdated: later
        return Outcome("retry", exc.code, route, backoff(row["attempts"]))
    if result.startswith("ignored:"):
        return Outcome("ignored", result.split(":", 1)[1], route)
    if result in REPLY_OUTCOMES:
        # a keyword reply was queued: wake a worker now rather than at the next sweep (before
        # the live events, so a slow publish never delays an opt-out's confirmation)
        await enqueue(registry_pool, settings, route, datetime.now(UTC))
    await _publish(events, route, row["occurred_at"], emitted)
    return Outcome("done", None if result == "applied" else result, route)


async def process_inbox_row(registry_pool: Any, supervisor: Any, settings: Settings,
                            row: Any, metrics: Metrics | None = None,
                            events: Publisher | None = None) -> Outcome:
    """Process one claimed row and record how it ended (retry with backoff when due later);
    what it changed is published to the church's live events through `events`."""
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT):
            outcome = await _process(registry_pool, supervisor, settings, row, events)
    except (ReceiptNotYetKnown, OrderNotYetKnown,
            compliance_sync.RegistrationNotYetKnown) as exc:
        # the sender (or the purchase, or the registration) has not recorded the id yet:
        # soon, or never ours
        reason = {ReceiptNotYetKnown: "unknown_message", OrderNotYetKnown: "unknown_order"}.get(
            type(exc), "unknown_registration")
        outcome = Outcome("retry", reason, retry_in=backoff(row["attempts"], base=0.25, cap=8.0))
        if row["attempts"] >= RECEIPT_MAX_ATTEMPTS:
            outcome = Outcome("ignored", reason)
    except Exception as exc:   # a bug or the registry: keep the event, try again later
        log.error("webhook_processing_failed", event_id=row["event_id"], exc_info=exc)
        outcome = Outcome("retry", f"error:{type(exc).__name__}"[:200],
                          retry_in=backoff(row["attempts"]))
    return await settle(registry_pool, settings, row, outcome, metrics)


async def settle(registry_pool: Any, settings: Settings, row: Any, outcome: Outcome,
                 metrics: Metrics | None = None) -> Outcome:
    """Record how processing a claimed row (any provider) ended, giving up after
    MAX_ATTEMPTS retries (`ignored`, `gave_up:<reason>`); count it; the outcome recorded."""
    if outcome.state == "retry" and row["attempts"] >= MAX_ATTEMPTS:
        outcome = Outcome("ignored", f"gave_up:{outcome.reason}", outcome.tenant_id)
    await record_outcome(registry_pool, settings, row, outcome)
    if metrics is not None:
        metrics.observe_webhook(row["event_type"], outcome.state)
    return outcome


async def record_outcome(registry_pool: Any, settings: Settings, row: Any,
                         outcome: Outcome) -> None:
    """Record how processing a claimed inbox row ended (any provider): finished, or due again
    after `outcome.retry_in` seconds."""
    q = rq(settings.sql_dir)
    if outcome.state == "retry":
        await q.retry_inbox_event(registry_pool, row["id"], outcome.tenant_id, outcome.reason,
                                  outcome.retry_in or 1.0, timeout=5.0)
        log.info("webhook_retry_scheduled", provider=row["provider"], event_id=row["event_id"],
                 reason=outcome.reason,
                 tenant_id=str(outcome.tenant_id) if outcome.tenant_id else None,
                 retry_in=outcome.retry_in)
    else:
        await q.finish_inbox_event(registry_pool, row["id"], outcome.state, outcome.tenant_id,
                                   outcome.reason, timeout=5.0)


RowProcessor = Callable[[Any], Awaitable[Outcome]]


async def claim_and_process(registry_pool: Any, settings: Settings, row_id: int,
                            process: RowProcessor) -> Outcome | None:
    """Claim one stored event (any provider) and process it with `process` (None when someone
    else has it or it is finished)."""
    row = await rq(settings.sql_dir).claim_inbox_event(registry_pool, row_id, LEASE_SECONDS,
                                                       timeout=5.0)
    return None if row is None else await process(row)


async def claim_and_process_due(registry_pool: Any, settings: Settings, provider: str,
                                limit: int, process: RowProcessor) -> int:
    """Reclaim `provider`'s stale claims, then process up to `limit` of its due events; how
    many were processed."""
    q = rq(settings.sql_dir)
    await q.requeue_stale_inbox_events(registry_pool, provider, timeout=5.0)
    rows = await q.claim_due_inbox_events(registry_pool, provider, limit, LEASE_SECONDS,
                                          timeout=5.0)
    for row in rows:
        await process(row)
    return len(rows)


async def process_by_id(registry_pool: Any, supervisor: Any, settings: Settings,
                        row_id: int, metrics: Metrics | None = None,
                        events: Publisher | None = None) -> Outcome | None:
    """Claim and process one stored carrier event (None when someone else has it or it is
    done)."""
    return await claim_and_process(registry_pool, settings, row_id, lambda row: (
        process_inbox_row(registry_pool, supervisor, settings, row, metrics, events)))


async def process_due(registry_pool: Any, supervisor: Any, settings: Settings,
                      limit: int = 100, metrics: Metrics | None = None,
                      events: Publisher | None = None) -> int:
    """Reclaim stale claims, then process up to `limit` due carrier events; how many were
    processed."""
    return await claim_and_process_due(registry_pool, settings, PROVIDER, limit, lambda row: (
        process_inbox_row(registry_pool, supervisor, settings, row, metrics, events)))


@dataclass
class CarrierInbox:
    """The carrier's stored events, as the dispatcher drives them."""

    registry_pool: Any
    supervisor: Any
    settings: Settings
    metrics: Metrics | None = None
    events: Publisher | None = None

    async def process_by_id(self, row_id: int) -> Outcome | None:
        """Process one stored event now."""
        return await process_by_id(self.registry_pool, self.supervisor, self.settings, row_id,
                                   self.metrics, self.events)

    async def process_due(self, limit: int) -> int:
        """Process up to `limit` due events."""
        return await process_due(self.registry_pool, self.supervisor, self.settings, limit,
                                 self.metrics, self.events)

    async def after_sweep(self) -> None:
        """Refresh the backlog gauges (every provider's)."""
        if self.metrics is not None:
            await observe_backlog(self.registry_pool, self.settings, self.metrics)

    async def prune(self) -> None:
        """Delete finished events (every provider's) and old outbound message ids."""
        await prune(self.registry_pool, self.settings, RETENTION_DAYS)


async def observe_backlog(registry_pool: Any, settings: Settings, metrics: Metrics) -> None:
    """Refresh the inbox backlog gauges, every provider's events together (after a sweep)."""
    rows = await rq(settings.sql_dir).inbox_backlog(registry_pool, timeout=5.0)
    metrics.observe_inbox({r["state"]: r["events"] for r in rows},
                          max((r["oldest_due_s"] for r in rows), default=0.0))


async def prune(registry_pool: Any, settings: Settings, days: int) -> None:
    """Delete finished inbox events and outbound message ids older than `days`."""
    q = rq(settings.sql_dir)
    events = await q.prune_inbox_events(registry_pool, days, timeout=30.0)
    ids = await q.prune_outbound_index(registry_pool, days, timeout=30.0)
    log.info("webhook_inbox_pruned", events=events, outbound_ids=ids, days=days)
