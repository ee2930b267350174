"""Delivery receipts (`message.sent`, `message.finalized`): move outbox rows forward only.

Order: queued < sending < sent < delivered | failed; `unknown` (a send whose outcome was lost)
may move to sent, delivered or failed. Nothing leaves delivered, failed, cancelled or skipped,
so a late `message.sent` after `message.finalized` changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Settings
from ..sqlq import tenant as tq

# Telnyx per-recipient status → our outbox state (None: nothing to record yet).
STATUS_MAP: dict[str, str | None] = {
    "queued": None, "sending": None, "sent": "sent", "delivered": "delivered",
    "delivery_unconfirmed": "sent", "sending_failed": "failed", "delivery_failed": "failed",
}


class ReceiptNotYetKnown(Exception):
    """No outbox row carries this carrier message id yet (the sender has not stored it)."""


@dataclass(frozen=True)
class Receipt:
    """One delivery receipt, reduced to what the outbox needs."""

    event_id: str
    event_type: str
    occurred_at: datetime
    carrier_message_id: str
    state: str                        # sent | delivered | failed
    error_code: str | None = None
    error_detail: str | None = None


def receipt_from_payload(event_id: str, event_type: str, occurred_at: datetime,
                         payload: dict[str, Any]) -> Receipt | None:
    """The receipt in a status event, or None when it records nothing (queued, sending)."""
    msg_id = payload.get("id")
    to = payload.get("to") or [{}]
    status = to[0].get("status") if isinstance(to, list) and isinstance(to[0], dict) else None
    if event_type == "message.sent" and status in (None, "queued", "sending"):
        status = "sent"
    state = STATUS_MAP.get(str(status))
    if not isinstance(msg_id, str) or not msg_id or state is None:
        return None
    code = detail = None
    errors = payload.get("errors") or []
    if state == "failed" and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = str(errors[0].get("code") or "")[:64] or None
        detail = str(errors[0].get("detail") or errors[0].get("title") or "")[:2000] or None
    return Receipt(event_id, event_type, occurred_at, msg_id[:128], state,
                   code or (f"telnyx_{status}" if state == "failed" else None), detail)


def status_event(row: Any, r: Receipt) -> dict[str, Any]:
    """One recipient's new status, as a `delivery.status` event lists it."""
    return {"outbox_id": row["id"], "broadcast_id": row["broadcast_id"],
            "member_id": row["member_id"],
            "conversation_message_id": row["conversation_message_id"], "status": r.state,
            "error_code": r.error_code, "at": r.occurred_at}


def advances(current: str, receipt_state: str) -> bool:
    """Whether a receipt moves an outbox row in `current` forward (receipt_advance_outbox's
    rule: queued, sending and unknown take any receipt; sent takes delivered or failed)."""
    return current in ("queued", "sending", "unknown") or (
        current == "sent" and receipt_state in ("delivered", "failed"))


async def apply_receipt(conn: Any, settings: Settings, r: Receipt,
                        statuses: list[dict[str, Any]] | None = None) -> str:
    """Apply once: `applied`, `stale` (row already further on) or `duplicate` (an applied
    status is appended to `statuses`, for the live events, once committed).

    Raises ReceiptNotYetKnown (nothing written) when no outbox row has this carrier id yet.
    """
    q = tq(settings.sql_dir)
    async with conn.transaction():
        if not await q.receipt_claim_event(conn, r.event_id, r.event_type):
            return "duplicate"
        row = await q.receipt_advance_outbox(conn, r.carrier_message_id, r.state,
                                             r.occurred_at, r.error_code, r.error_detail)
        if row is None:
            state = await q.receipt_outbox_state(conn, r.carrier_message_id)
            if state is None:
                raise ReceiptNotYetKnown(r.carrier_message_id)
            if not advances(state, r.state):
                return "stale"
            # The sender stored the id (and `sent`) after the UPDATE's snapshot and before this
            # read's: the UPDATE saw no such row. Once more, now that the row is there.
            row = await q.receipt_advance_outbox(conn, r.carrier_message_id, r.state,
                                                 r.occurred_at, r.error_code, r.error_detail)
            if row is None:
                return "stale"
        if row["conversation_message_id"] is not None:
            await q.receipt_mirror_conversation(conn, row["conversation_message_id"], r.state)
    if statuses is not None:
        statuses.append(status_event(row, r))
    return "applied"
