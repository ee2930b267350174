"""Single-use tickets to open `/api/v1/events` where no cookie can be sent (another site, a
native client): issued to an authenticated admin, valid TICKET_TTL_S, bound to the admin, the
church and the session of the token that asked (a revoked session refuses the socket too).
Only the ticket's SHA-256 is stored; using it deletes it, on whichever process it is used."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ..auth.state import Principal
from ..auth.tokens import AccessClaims
from ..config import Settings
from ..sqlq import registry as rq

TICKET_TTL_S = 30.0
TIMEOUT_S = 5.0


def _hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


async def issue(registry_pool: Any, settings: Settings, who: Principal) -> str:
    """A new ticket for this admin's session."""
    ticket = secrets.token_urlsafe(32)
    await rq(settings.sql_dir).insert_event_ticket(
        registry_pool, _hash(ticket), who.tenant_id, who.admin_id, who.session_id, who.role,
        who.valid_after_us, who.exp, TICKET_TTL_S, timeout=TIMEOUT_S)
    return ticket


async def redeem(registry_pool: Any, settings: Settings, ticket: str) -> AccessClaims | None:
    """The claims a ticket was issued for (it is used up), or None: unknown, used or expired."""
    if not 16 <= len(ticket) <= 128:
        return None
    row = await rq(settings.sql_dir).use_event_ticket(registry_pool, _hash(ticket),
                                                      timeout=TIMEOUT_S)
    if row is None:
        return None
    return AccessClaims(admin_id=row["admin_id"], tenant_id=row["tenant_id"], role=row["role"],
                        session_id=row["session_id"], jti="ticket", iat=0,
                        exp=int(row["token_exp"]), valid_after_us=int(row["valid_after_us"]))
