"""A real browser calls the API from another origin: headless Chromium loads a page served by
a small aiohttp app on another port, and the page's script signs up, calls the API with a
Bearer token, logs in in cookie mode and writes with the CSRF header (each write preflighted).
A page from an origin that is not configured cannot read anything.

Needs Debian's `chromium` (`.ci/run` installs it when missing); skipped without it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import build_app
from ywmessaging.config import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium; .ci/run does it)")

SCRIPT = """
const api = %(api)s, out = {};
const json = {"Content-Type": "application/json"};
async function call(name, path, init) {
  const r = await fetch(api + path, init);
  out[name] = r.status;
  return r;
}
async function run() {
  let r = await call("register", "/api/v1/auth/register", {method: "POST", headers: json,
    body: JSON.stringify({church_name: "Grace", email: %(email)s, password: %(password)s,
                          first_name: "Pat", last_name: "Lee"})});
  const tokens = await r.json();
  r = await call("bearer_get", "/api/v1/church",
                 {headers: {"Authorization": "Bearer " + tokens.access_token}});
  out.request_id = r.headers.get("X-Request-ID");
  r = await call("cookie_login", "/api/v1/auth/login", {method: "POST", headers: json,
    credentials: "include",
    body: JSON.stringify({email: %(email)s, password: %(password)s, use_cookies: true})});
  const csrf = (await r.json()).csrf_token;
  r = await call("cookie_get", "/api/v1/church", {credentials: "include"});
  out.cookie_name = (await r.json()).name;
  r = await call("cookie_patch", "/api/v1/church", {method: "PATCH", credentials: "include",
    headers: {...json, "X-CSRF-Token": csrf}, body: JSON.stringify({name: "Grace Renamed"})});
  out.patched_name = (await r.json()).name;
  r = await call("no_csrf_patch", "/api/v1/church", {method: "PATCH", credentials: "include",
    headers: json, body: JSON.stringify({name: "Nope"})});
  out.no_csrf_code = (await r.json()).code;
}
run().catch(e => { out.error = String(e); })
     .finally(() => { document.getElementById("out").textContent = JSON.stringify(out); });
"""


def _page_app(script: dict[str, str]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        body = (f"<!doctype html><html><body><pre id=out>pending</pre>"
                f"<script>{script['text']}</script></body></html>")
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


async def _browse(url: str, profile: Path) -> dict[str, Any]:
    """Load `url` in headless Chromium and return what the page wrote into #out."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        dom, _ = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    found = re.search(r'<pre id="out">(.*?)</pre>', dom.decode(), re.S)
    assert found, dom.decode()[:2000]
    text = found.group(1).replace("&quot;", '"').replace("&amp;", "&")
    assert text != "pending", "the page's script never finished"
    result: dict[str, Any] = json.loads(text)
    return result


async def test_a_page_on_another_origin_uses_the_api_with_bearer_and_cookies(
        aiohttp_server: Any, api_settings: Settings, tmp_path: Path) -> None:
    script = {"text": ""}
    page = await aiohttp_server(_page_app(script))
    api = await aiohttp_server(build_app(api_settings.with_(
        cors_origins=f"http://localhost:{page.port}")))
    script["text"] = SCRIPT % {
        "api": json.dumps(f"http://localhost:{api.port}"),
        "email": json.dumps(f"pat-{secrets.token_hex(4)}@example.org"),
        "password": json.dumps("a long passphrase 1"),
    }
    # the page's origin (localhost:<page port>) is configured: everything works, cookies
    # included (localhost on two ports is one site, so SameSite=Lax cookies travel)
    out = await _browse(f"http://localhost:{page.port}/", tmp_path / "profile-a")
    assert "error" not in out, out
    assert (out["register"], out["bearer_get"], out["cookie_login"]) == (201, 200, 200), out
    assert (out["cookie_get"], out["cookie_name"]) == (200, "Grace"), out
    assert (out["cookie_patch"], out["patched_name"]) == (200, "Grace Renamed"), out
    assert (out["no_csrf_patch"], out["no_csrf_code"]) == (403, "csrf_failed"), out
    assert out["request_id"], "X-Request-ID is not exposed to the page"
    # the same page from 127.0.0.1 is another origin, not configured: the browser refuses
    refused = await _browse(f"http://127.0.0.1:{page.port}/", tmp_path / "profile-b")
    assert "TypeError" in refused.get("error", ""), refused
    assert "register" not in refused
