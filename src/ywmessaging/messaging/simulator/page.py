"""The phones page at the simulator's root: every number that was texted as a phone-like
thread, the delivery status the service was told, a box to text back as that member and STOP /
START buttons (all through `POST /sim/inbound`). Plain HTML, CSS and a script in `page/`,
served as files; the script polls `GET /sim/threads` every second and writes every text with
`textContent` (a message body is untrusted), under a policy that runs scripts from this origin
only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from .replies import SIM_STATE, ok
from .state import SimState

PAGE_DIR = Path(__file__).with_name("page")
# file name → content type; nothing else under page/ is served
FILES = {"index.html": "text/html", "phones.js": "text/javascript", "phones.css": "text/css"}
# scripts, styles and fetches from this origin only; no inline script, no framing
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _file(name: str) -> web.FileResponse:
    return web.FileResponse(PAGE_DIR / name,
                            headers={**HEADERS, "Content-Type": f"{FILES[name]}; charset=utf-8"})


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the phones page."""
    return _file("index.html")


async def asset(request: web.Request) -> web.FileResponse:
    """GET /sim/page/{name}: the page's script and style sheet."""
    name = request.match_info["name"]
    if name not in FILES or name == "index.html":
        raise web.HTTPNotFound()
    return _file(name)


def threads(state: SimState) -> list[dict[str, Any]]:
    """One thread per member number: the church's texts to it (with the last status a receipt
    told the service, `queued` before any) and the member's texts back, oldest first; the
    thread with the latest text first. `church` is the church's number of each text."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in state.messages:
        out.setdefault(m["to"][0]["phone_number"], []).append({
            "id": m["id"], "direction": "outbound", "text": m["text"], "at": m["received_at"],
            "status": state.told.get(m["id"], "queued"), "church": m["from"]["phone_number"]})
    for m in state.inbound:   # `sending` until the service answered its webhook
        out.setdefault(m["from"], []).append({
            "id": m["id"], "direction": "inbound", "text": m["text"], "at": m["received_at"],
            "status": m["status"], "church": m["to"]})
    found = []
    for member, messages in out.items():
        messages.sort(key=lambda m: m["at"])
        # the number the member answers: the church's side of the latest text
        found.append({"member": member, "church_number": messages[-1]["church"],
                      "messages": messages, "last_at": messages[-1]["at"]})
    return sorted(found, key=lambda t: t["last_at"], reverse=True)


async def get_threads(request: web.Request) -> web.Response:
    """GET /sim/threads: what the phones page shows."""
    return ok(threads(request.app[SIM_STATE]))


def add_page_routes(app: web.Application) -> None:
    """The phones page and its JSON."""
    app.router.add_get("/", index)
    app.router.add_get("/sim/page/{name}", asset)
    app.router.add_get("/sim/threads", get_threads)
