"""Connecting a church to Planning Center: the authorization (PKCE, signed state), the
callback's code exchange, tokens sealed at rest (SecretBox purposes `pco_access`,
`pco_refresh`), webhook subscriptions, and disconnecting (tokens revoked, subscriptions
removed). The church's row is `pco_connection`; the registry's `pco_links` routes its
organization's webhooks and schedules its syncs."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog

from ..church import Actor, audit
from ..config import Settings
from ..crypto import SecretBox
from ..errors import AppError, Conflict, ServiceUnavailable
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .pco_client import PcoAuthError, PcoError, PcoHttp, PcoSession, Tokens
from .pco_state import STATE_TTL_S, InvalidState, StateClaims, new_state, pkce_pair, state_key

log = structlog.get_logger("ywm.pco")

ACCESS, REFRESH, PKCE, WEBHOOKS = "pco_access", "pco_refresh", "pco_pkce", "pco_webhooks"
EVENTS = ("people.v2.events.person.created", "people.v2.events.person.updated",
          "people.v2.events.person.destroyed")


class NotConnected(Conflict):
    code, title = "pco_not_connected", "The church is not connected to Planning Center"


class OrganizationTaken(Conflict):
    code, title = "pco_organization_taken", ("This Planning Center organization is connected "
                                              "to another church")


class AuthorizationRefused(AppError):
    status, code, title = 400, "pco_authorization_refused", "Planning Center refused the code"


class PcoUnavailable(ServiceUnavailable):
    code, title = "pco_unavailable", "Planning Center could not be reached; try again"


@dataclass(frozen=True)
class Pco:
    """What the Planning Center code needs: settings, the secret box, the HTTP client, the
    registry pool."""

    settings: Settings
    box: SecretBox
    http: PcoHttp
    registry: Any

    @property
    def state_key(self) -> bytes:
        """The key that signs OAuth states."""
        return state_key(self.settings.require_secret_key())


async def begin(conn: Any, pco: Pco, tenant_id: uuid.UUID, admin_id: uuid.UUID
                ) -> dict[str, Any]:
    """A new authorization: its URL (state bound to church and admin, PKCE) and expiry."""
    state, claims = new_state(pco.state_key, tenant_id, admin_id)
    verifier, challenge = pkce_pair()
    until = datetime.datetime.fromtimestamp(claims.expires, datetime.UTC)
    await tq(pco.settings.sql_dir).pco_begin(conn, claims.nonce, pco.box.seal(verifier, PKCE),
                                             admin_id, until)
    return {"authorization_url": pco.http.authorize_url(state, challenge),
            "expires_in": STATE_TTL_S, "expires_at": until.isoformat()}


async def complete(conn: Any, pco: Pco, claims: StateClaims, code: str) -> dict[str, Any]:
    """The callback: consume the pending authorization, exchange the code, link the
    organization, store the sealed tokens, subscribe to webhooks, queue the first sync."""
    q = tq(pco.settings.sql_dir)
    pending = await q.pco_take_pending(conn, claims.nonce)
    if pending is None or pending["pending_admin"] != claims.admin_id:
        raise InvalidState("this authorization was already used or replaced; connect again")
    verifier = pco.box.open(pending["pending_verifier"], PKCE)
    try:
        tokens = await pco.http.exchange(code, verifier)
        session = pco.http.session(tokens, _no_save)
        org = (await session.get("/people/v2"))["data"]
        session.limiter = pco.http.limiter(str(org["id"]), session.limiter)
        secrets = await _subscribe(session, pco.settings)
        tokens = session.tokens     # refreshed already if they were about to expire
    except PcoAuthError as exc:
        raise AuthorizationRefused(str(exc)) from exc
    except PcoError as exc:
        raise PcoUnavailable(str(exc)) from exc
    org_id, org_name = str(org["id"]), str(org.get("attributes", {}).get("name", ""))[:200]
    sealed = pco.box.seal(orjson.dumps(secrets).decode(), WEBHOOKS)
    try:
        await rq(pco.settings.sql_dir).pco_link(pco.registry, claims.tenant_id, org_id, sealed,
                                                pco.settings.pco_sync_interval)
    except asyncpg.UniqueViolationError:
        await _revoke(pco.http, tokens)
        raise OrganizationTaken() from None
    async with conn.transaction():
        await q.pco_connected(conn, org_id, org_name, pco.box.seal(tokens.access, ACCESS),
                              pco.box.seal(tokens.refresh, REFRESH), tokens.expires_at,
                              tokens.scope, claims.admin_id)
        run = await q.pco_queue_run(conn, "full", "connect", claims.admin_id)
        await audit(conn, pco.settings, Actor(claims.admin_id, None, None),
                    "integrations.pco_connected", "planning_center", org_id,
                    {"organization": org_name})
    log.info("pco_connected", organization_id=org_id)
    return {"organization_id": org_id, "run_id": run["id"]}


async def _no_save(_tokens: Tokens) -> None:
    """Tokens fresh from the exchange (or refreshed at once) are stored by `complete`."""


async def _subscribe(session: PcoSession, settings: Settings) -> dict[str, str]:
    """Webhook subscriptions for person events to PCO_WEBHOOK_URL (ours from an earlier
    connection replaced); each event's authenticity secret."""
    url = settings.pco_webhook_url
    if url is None:
        return {}
    await _unsubscribe(session, url)
    out: dict[str, str] = {}
    for name in EVENTS:
        doc = await session.request("POST", "/webhooks/v2/subscriptions", json={
            "data": {"attributes": {"name": name, "url": url, "active": True}}})
        if doc is not None:
            out[name] = str(doc["data"]["attributes"]["authenticity_secret"])
    return out


async def _unsubscribe(session: PcoSession, url: str) -> None:
    """Delete the organization's subscriptions that deliver to `url`."""
    doc = await session.get("/webhooks/v2/subscriptions", {"per_page": "100"})
    for sub in doc.get("data", []):
        if sub.get("attributes", {}).get("url") == url:
            await session.request("DELETE", f"/webhooks/v2/subscriptions/{sub['id']}",
                                  missing_ok=True)


async def _revoke(http: PcoHttp, tokens: Tokens) -> bool:
    """Revoke both tokens; whether Planning Center confirmed."""
    try:
        for token in (tokens.refresh, tokens.access):
            if token:
                await http.revoke(token)
        return True
    except PcoError as exc:
        log.warning("pco_revoke_failed", error=str(exc))
        return False


def tokens_of(box: SecretBox, row: Any) -> Tokens:
    """The stored tokens, opened."""
    return Tokens(box.open(row["access_sealed"], ACCESS), box.open(row["refresh_sealed"], REFRESH),
                  row["expires_at"], row["scope"] or "people")


async def save_tokens(conn: Any, pco: Pco, tokens: Tokens) -> None:
    """Store a refreshed pair, sealed."""
    await tq(pco.settings.sql_dir).pco_save_tokens(
        conn, pco.box.seal(tokens.access, ACCESS), pco.box.seal(tokens.refresh, REFRESH),
        tokens.expires_at)


async def disconnect(conn: Any, pco: Pco, tenant_id: uuid.UUID, actor: Actor
                     ) -> dict[str, Any]:
    """Remove the webhook subscriptions, revoke the tokens, forget them, unlink the
    organization. The members and groups the syncs made stay."""
    q = tq(pco.settings.sql_dir)
    row = await q.pco_get_connection(conn)
    if row is None or row["status"] != "connected":
        raise NotConnected()
    tokens = tokens_of(pco.box, row)
    if pco.settings.pco_webhook_url is not None:
        try:
            session = pco.http.session(tokens, lambda t: save_tokens(conn, pco, t),
                                       row["organization_id"])
            await _unsubscribe(session, pco.settings.pco_webhook_url)
            tokens = session.tokens
        except PcoError as exc:
            log.warning("pco_unsubscribe_failed", error=str(exc))
    revoked = await _revoke(pco.http, tokens)
    async with conn.transaction():
        await q.pco_disconnected(conn)
        await audit(conn, pco.settings, actor, "integrations.pco_disconnected",
                    "planning_center", row["organization_id"], {"revoked": revoked})
    await rq(pco.settings.sql_dir).pco_unlink(pco.registry, tenant_id)
    log.info("pco_disconnected", organization_id=row["organization_id"], revoked=revoked)
    return {"status": "disconnected", "revoked": revoked}
