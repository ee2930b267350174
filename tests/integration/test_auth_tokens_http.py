"""Bad access tokens through HTTP: every one of them is 401 on an authenticated route."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import PASSWORD, Client, bearer, problem, register
from ywmessaging.auth.state import AUTH


def _resign(client: Client, token: str, change: dict[str, Any], *, key: bytes | None = None,
            header: dict[str, Any] | None = None) -> str:
    """The token's claims with changes, signed with the app's real access key unless told."""
    ring = client.app[AUTH].tokens._access
    claims = jwt.decode(token, options={"verify_signature": False}) | change
    return jwt.encode(claims, key or ring.keys[ring.signing_kid], algorithm="HS256",
                      headers=header or {"kid": ring.signing_kid, "typ": "at+jwt"})


async def _me(client: Client, token: str) -> Any:
    return await client.get("/api/v1/auth/me", headers=bearer(token))


async def test_resigned_token_without_changes_is_accepted(api_client: Client) -> None:
    """Control: the re-signing helper makes tokens the app accepts."""
    church = await register(api_client)
    assert (await _me(api_client, _resign(api_client, church.access, {}))).status == 200


async def test_bad_tokens_are_401(api_client: Client) -> None:
    church = await register(api_client)
    head, body, sig = church.access.split(".")
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    other_claims = base64.urlsafe_b64encode(
        jwt.decode(church.access, options={"verify_signature": False})["sub"].encode()
    ).decode()
    bad = {
        "expired": _resign(api_client, church.access, {"exp": int(time.time()) - 120,
                                                       "iat": int(time.time()) - 1000}),
        "tampered": f"{head}.{body}.{flipped}",
        "tampered_claims": f"{head}.{other_claims}.{sig}",
        "alg_none": f"{none_head}.{body}.",
        "wrong_aud": _resign(api_client, church.access, {"aud": "another-api"}),
        "wrong_iss": _resign(api_client, church.access, {"iss": "someone"}),
        "wrong_key": _resign(api_client, church.access, {}, key=b"w" * 32),
        "unknown_kid": _resign(api_client, church.access, {},
                               header={"kid": "nope", "typ": "at+jwt"}),
        "garbage": "garbage",
    }
    for name, token in bad.items():
        resp = await _me(api_client, token)
        body_ = await problem(resp, 401, "invalid_token")
        assert "Bearer" in resp.headers["WWW-Authenticate"], name
        assert "detail" not in body_, name  # never says which check failed


async def test_no_token_and_wrong_scheme(api_client: Client) -> None:
    await problem(await api_client.get("/api/v1/auth/me"), 401, "unauthorized")
    await problem(await api_client.get("/api/v1/auth/me", headers={"Authorization": "Basic x"}),
                  401, "invalid_token")


async def test_mfa_token_and_refresh_token_are_not_access_tokens(api_client: Client) -> None:
    church = await register(api_client)
    mfa = api_client.app[AUTH].tokens.issue_mfa(
        admin_id=uuid.UUID(church.admin_id), tenant_id=uuid.UUID(church.tenant_id))
    await problem(await _me(api_client, mfa), 401, "invalid_token")
    await problem(await _me(api_client, church.refresh), 401, "invalid_token")


async def test_tid_claim_decides_the_tenant(api_client: Client) -> None:
    """A token for church A re-signed with B's tid (with the real key: the worst case, a
    leaked key) reaches B's database, where A's admin does not exist: 401, not B's data."""
    a = await register(api_client)
    b = await register(api_client)
    forged = _resign(api_client, a.access, {"tid": b.tenant_id})
    await problem(await _me(api_client, forged), 401, "invalid_token")
    # Nothing in the path or body can move a request to another church.
    resp = await api_client.get(f"/api/v1/auth/me?tenant_id={b.tenant_id}", headers=a.auth)
    assert (await resp.json())["church"]["id"] == a.tenant_id


async def test_token_below_a_pushed_tokens_valid_after_is_refused(api_client: Client) -> None:
    """A token whose `vaf` is below the admin's tokens_valid_after as last pushed (password
    change, MFA, role change) is refused; the same token with the current `vaf` stands."""
    church = await register(api_client)
    fresh = await (await api_client.post("/api/v1/auth/login", json={
        "email": church.email, "password": PASSWORD})).json()
    assert (await _me(api_client, fresh["access_token"])).status == 200
    vaf = jwt.decode(fresh["access_token"], options={"verify_signature": False})["vaf"]
    older = _resign(api_client, fresh["access_token"], {"vaf": vaf - 1})
    assert (await _me(api_client, older)).status == 200   # nothing pushed yet
    await api_client.app[AUTH].revocations.admin(uuid.UUID(church.tenant_id),
                                                 uuid.UUID(church.admin_id), vaf)
    await problem(await _me(api_client, older), 401, "invalid_token")
    assert (await _me(api_client, fresh["access_token"])).status == 200
