"""Cookie mode beside Bearer: HttpOnly cookies, CSRF double-submit on writes, refresh, logout."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import PASSWORD, Client, bearer, problem, register
from ywmessaging.auth.cookies import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE


def _jar(resp: Any) -> dict[str, str]:
    """The cookies a response sets (the test client's own jar keeps Secure ones off http)."""
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def _cookie_header(cookies: dict[str, str], *names: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{n}={cookies[n]}" for n in names)}


async def _cookie_login(client: Client, email: str) -> tuple[dict[str, str], dict[str, Any]]:
    resp = await client.post("/api/v1/auth/login",
                             json={"email": email, "password": PASSWORD, "use_cookies": True})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["token_type"] == "cookie" and "access_token" not in body
    assert "refresh_token" not in body
    raw = " ".join(resp.headers.getall("Set-Cookie"))
    assert "HttpOnly" in raw and "Secure" in raw and "SameSite=Lax" in raw
    return _jar(resp), body


_PW = {"password": PASSWORD}  # MFA setup needs the current password


async def test_cookie_session_reads_without_csrf_writes_with_it(api_client: Client) -> None:
    church = await register(api_client)
    cookies, body = await _cookie_login(api_client, church.email)
    assert cookies[CSRF_COOKIE] == body["csrf_token"]
    session = _cookie_header(cookies, ACCESS_COOKIE, CSRF_COOKIE)
    me = await api_client.get("/api/v1/auth/me", headers=session)
    assert me.status == 200
    await problem(await api_client.post("/api/v1/auth/mfa/setup", headers=session, json=_PW), 403,
                  "csrf_failed")
    wrong = {**session, CSRF_HEADER: body["csrf_token"][:-2] + "xx"}
    await problem(await api_client.post("/api/v1/auth/mfa/setup", headers=wrong, json=_PW), 403,
                  "csrf_failed")
    good = {**session, CSRF_HEADER: body["csrf_token"]}
    resp = await api_client.post("/api/v1/auth/mfa/setup", headers=good, json=_PW)
    assert resp.status == 200


async def test_csrf_token_of_another_session_is_refused(api_client: Client) -> None:
    church = await register(api_client)
    mine, _ = await _cookie_login(api_client, church.email)
    theirs, their_body = await _cookie_login(api_client, church.email)
    planted = {**_cookie_header({**mine, CSRF_COOKIE: theirs[CSRF_COOKIE]},
                                ACCESS_COOKIE, CSRF_COOKIE),
               CSRF_HEADER: their_body["csrf_token"]}
    await problem(await api_client.post("/api/v1/auth/mfa/setup", headers=planted, json=_PW), 403,
                  "csrf_failed")


async def test_bearer_header_needs_no_csrf(api_client: Client) -> None:
    church = await register(api_client)
    cookies, _ = await _cookie_login(api_client, church.email)
    headers = {**bearer(church.access), **_cookie_header(cookies, ACCESS_COOKIE, CSRF_COOKIE)}
    resp = await api_client.post("/api/v1/auth/mfa/setup", headers=headers, json=_PW)
    assert resp.status == 200


async def test_cookie_refresh_and_logout(api_client: Client) -> None:
    church = await register(api_client)
    cookies, body = await _cookie_login(api_client, church.email)
    refresh_headers = _cookie_header(cookies, REFRESH_COOKIE, CSRF_COOKIE)
    await problem(await api_client.post("/api/v1/auth/refresh", headers=refresh_headers), 403,
                  "csrf_failed")
    resp = await api_client.post("/api/v1/auth/refresh",
                                 headers={**refresh_headers, CSRF_HEADER: body["csrf_token"]})
    new_body = await resp.json()
    assert resp.status == 200, new_body
    assert new_body["token_type"] == "cookie" and "refresh_token" not in new_body
    new = _jar(resp)
    assert new[REFRESH_COOKIE] != cookies[REFRESH_COOKIE]
    session = {**_cookie_header(new, ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE),
               CSRF_HEADER: new_body["csrf_token"]}
    assert (await api_client.get("/api/v1/auth/me", headers=session)).status == 200
    await problem(await api_client.post(
        "/api/v1/auth/logout", headers=_cookie_header(new, ACCESS_COOKIE, CSRF_COOKIE)),
        403, "csrf_failed")
    out = await api_client.post("/api/v1/auth/logout", headers=session)
    assert out.status == 204
    cleared = SimpleCookie()
    for header in out.headers.getall("Set-Cookie"):
        cleared.load(header)
    assert {cleared[n]["max-age"] for n in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE)} == {"0"}
    await problem(await api_client.get("/api/v1/auth/me", headers=session), 401,
                  "invalid_token")
    await problem(await api_client.post("/api/v1/auth/refresh", headers=session), 401,
                  "invalid_refresh_token")


async def test_register_in_cookie_mode(api_client: Client) -> None:
    resp = await api_client.post("/api/v1/auth/register", json={
        "church_name": "Cookie Chapel", "email": f"cookie-{secrets.token_hex(4)}@example.org",
        "password": PASSWORD, "first_name": "C", "last_name": "O", "use_cookies": True})
    body = await resp.json()
    assert resp.status == 201 and body["token_type"] == "cookie", body
    cookies = _jar(resp)
    me = await api_client.get("/api/v1/auth/me",
                              headers=_cookie_header(cookies, ACCESS_COOKIE))
    assert (await me.json())["church"]["name"] == "Cookie Chapel"
