"""Telnyx-shaped message records and webhook envelopes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from ..segments import count_segments


def iso_now() -> str:
    """Telnyx timestamp style: ISO-8601 with milliseconds and +00:00."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _party(number: str, status: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"phone_number": number, "carrier": "SIM WIRELESS",
                           "line_type": "Wireless"}
    if status is not None:
        doc["status"] = status
    return doc


def outbound_message(body: dict[str, Any], *, webhook_url: str | None) -> dict[str, Any]:
    """The `data` of a POST /v2/messages answer (status `queued`); MMS when `media_urls`."""
    text = str(body.get("text") or "")
    media = [{"url": url, "content_type": None, "sha256": None, "size": None}
             for url in body.get("media_urls") or []]
    seg = count_segments(text)
    parts = 1 if media else seg.segments
    return {
        "record_type": "message", "direction": "outbound", "id": str(uuid.uuid4()),
        "type": "MMS" if media else "SMS",
        "messaging_profile_id": body.get("messaging_profile_id"),
        "organization_id": "sim-org", "from": _party(str(body.get("from"))),
        "to": [_party(str(body.get("to")), "queued")], "text": text, "num_chars": len(text),
        "subject": body.get("subject"), "media": media, "encoding": seg.encoding,
        "parts": parts, "cost": {"amount": f"{0.004 * parts:.4f}", "currency": "USD"},
        "tags": [], "webhook_url": webhook_url, "webhook_failover_url": None,
        "received_at": iso_now(), "sent_at": None, "completed_at": None, "errors": [],
    }


def status_payload(message: dict[str, Any], status: str,
                   errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The payload of a message.sent / message.finalized event for `message`."""
    payload = dict(message)
    payload["to"] = [dict(message["to"][0], status=status)]
    payload["sent_at"] = iso_now()
    if status not in ("queued", "sending", "sent"):
        payload["completed_at"] = iso_now()
    payload["errors"] = errors or []
    return payload


def inbound_media(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Telnyx's inbound media items ({url, content_type, size, hash_sha256}) for what a test
    asked for (a URL alone gets a content type from its extension, a made-up size and hash)."""
    out = []
    for item in items:
        url = str(item["url"])
        ext = url.rpartition(".")[2].lower()
        guessed = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                   "gif": "image/gif", "mp4": "video/mp4"}.get(ext, "application/octet-stream")
        out.append({"url": url, "content_type": item.get("content_type") or guessed,
                    "size": item.get("size") if isinstance(item.get("size"), int) else 48213,
                    "hash_sha256": item.get("hash_sha256")
                    or hashlib.sha256(url.encode()).hexdigest()})
    return out


def inbound_payload(from_number: str, to_number: str, text: str,
                    media: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The payload of a message.received event (MMS when it has media)."""
    seg = count_segments(text)
    items = inbound_media(media or [])
    return {
        "record_type": "message", "direction": "inbound", "id": str(uuid.uuid4()),
        "type": "MMS" if items else "SMS", "messaging_profile_id": None,
        "organization_id": "sim-org",
        "from": _party(from_number), "to": [_party(to_number, "webhook_delivered")],
        "cc": [], "text": text, "subject": None, "media": items, "encoding": seg.encoding,
        "parts": 1 if items else seg.segments, "tags": [], "received_at": iso_now(),
        "cost": None,
    }


def envelope(event_type: str, payload: dict[str, Any], *, event_id: str | None = None,
             occurred_at: str | None = None) -> dict[str, Any]:
    """A webhook body without `meta` (added per delivery attempt)."""
    return {"data": {"record_type": "event", "id": event_id or str(uuid.uuid4()),
                     "event_type": event_type, "occurred_at": occurred_at or iso_now(),
                     "payload": payload}}


def order_line(e164: str, status: str) -> dict[str, Any]:
    """One number of a number order (its own id is the order line's, not the number's)."""
    return {"id": str(uuid.uuid4()), "record_type": "number_order_phone_number",
            "phone_number": e164, "status": status, "country_code": "US",
            "country_iso_alpha2": "US", "phone_number_type": "local", "bundle_id": None,
            "regulatory_requirements": [], "requirements_met": True,
            "requirements_status": "approved" if status == "success" else "pending"}


def number_order(numbers: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """A new number order, `pending` like Telnyx's (POST /v2/number_orders)."""
    now = iso_now()
    return {"id": str(uuid.uuid4()), "record_type": "number_order", "status": "pending",
            "phone_numbers": [order_line(n, "pending") for n in numbers],
            "phone_numbers_count": len(numbers), "requirements_met": True,
            "sub_number_orders_ids": [str(uuid.uuid4())],
            "messaging_profile_id": body.get("messaging_profile_id"),
            "connection_id": body.get("connection_id"),
            "billing_group_id": body.get("billing_group_id"),
            "customer_reference": body.get("customer_reference"),
            "created_at": now, "updated_at": now}


def settle_order(order: dict[str, Any], status: str) -> None:
    """Complete `order` in place as `success` or `failure` (every line alike)."""
    order["status"] = status
    order["updated_at"] = iso_now()
    for line in order["phone_numbers"]:
        line["status"] = status
        line["requirements_status"] = "approved" if status == "success" else "cancelled"

