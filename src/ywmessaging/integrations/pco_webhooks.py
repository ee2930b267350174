"""Planning Center's webhooks: an `EventDelivery` list signed with the subscription's
authenticity secret (`X-PCO-Webhooks-Authenticity`: hex HMAC-SHA256 of the raw body). The
organization named in the body finds the church and its secrets in the registry; nothing is
acted on before the signature matches. Then the church's sync is made due (and, for
`person.destroyed`, the person id kept) in the registry before the answer: durable."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import Unauthorized
from ..sqlq import registry as rq
from .pco_connection import WEBHOOKS, Pco

AUTHENTICITY_HEADER = "X-PCO-Webhooks-Authenticity"
DESTROYED = "people.v2.events.person.destroyed"


class BadPcoSignature(Unauthorized):
    code, title = "pco_signature_invalid", "The Planning Center webhook signature does not match"


@dataclass(frozen=True)
class PcoEvent:
    """A verified delivery: the church and what happened."""

    tenant_id: uuid.UUID
    names: tuple[str, ...]
    removed: tuple[str, ...]


def _deliveries(raw: bytes) -> tuple[str, list[dict[str, Any]]]:
    try:
        doc = orjson.loads(raw)
        items = doc["data"] if isinstance(doc["data"], list) else [doc["data"]]
        org = {str(i["relationships"]["organization"]["data"]["id"]) for i in items}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise BadPcoSignature("not a Planning Center delivery") from None
    if len(org) != 1:
        raise BadPcoSignature("one organization per delivery")
    return org.pop(), items


async def verify(pco: Pco, raw: bytes, signature: str | None) -> PcoEvent:
    """The verified event (401 on any doubt)."""
    if not signature:
        raise BadPcoSignature("no X-PCO-Webhooks-Authenticity header")
    org, items = _deliveries(raw)
    row = await rq(pco.settings.sql_dir).pco_route(pco.registry, org)
    if row is None or row["webhook_secrets"] is None:
        raise BadPcoSignature("no church is connected to this organization")
    secrets: dict[str, str] = orjson.loads(pco.box.open(row["webhook_secrets"], WEBHOOKS))
    names = tuple(str(i.get("attributes", {}).get("name", "")) for i in items)
    ok = False
    for name in set(names):
        secret = secrets.get(name)
        if secret is not None:
            want = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            ok = ok or hmac.compare_digest(want, signature.strip().lower())
    if not ok:
        raise BadPcoSignature()
    removed = []
    for item, name in zip(items, names, strict=True):
        if name == DESTROYED:
            try:
                removed.append(str(orjson.loads(item["attributes"]["payload"])["data"]["id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
    return PcoEvent(row["tenant_id"], names, tuple(removed))


async def accept(pco: Pco, event: PcoEvent) -> None:
    """Make the church's sync due now (keeping removed person ids)."""
    await rq(pco.settings.sql_dir).pco_sync_soon(pco.registry, event.tenant_id,
                                                 list(event.removed))
