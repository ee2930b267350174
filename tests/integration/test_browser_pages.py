"""The two pages, in headless Chromium: the API docs (Swagger UI at `/docs` over
`/openapi.yaml`) and the carrier simulator's phones page (texts arrive, a member texts back and
opts out and in, and the church sees it through the API). Both run under a policy that allows
scripts from their own origin only; no policy violation, no console error.

Needs Debian's `chromium` (`.ci/run` installs it when missing); skipped without it. A failing
test leaves a screenshot under `test-artifacts/`.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.integration.browser import *  # noqa: F403
from tests.integration.browser import failure_artifacts, needs_chromium, new_page
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import Client, Sending, running_worker, wait_until
from ywmessaging.config import Settings

pytestmark = needs_chromium
# a message body is untrusted: the page must show it as text, never run it
HOSTILE = 'Thanks! <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


async def test_docs_page_renders_the_contract_and_tries_a_route(
        browser: Browser, api_client: Client) -> None:
    page, errors = await new_page(browser)
    async with failure_artifacts(page, "docs_page"):
        resp = await page.goto(str(api_client.make_url("/docs")))
        assert resp is not None and resp.status == 200
        assert "script-src 'self'" in (await resp.all_headers())["content-security-policy"]
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "YWMESSAGING API")
        operations = page.locator(".opblock")
        await expect(operations.first).to_be_visible()
        assert await operations.count() > 50
        # open GET /healthz, try it out: the page calls the service and shows the answer
        healthz = page.locator("#operations-operations-getHealthz")
        await healthz.locator(".opblock-summary").click()
        await healthz.get_by_role("button", name="Try it out").click()
        await healthz.get_by_role("button", name="Execute").click()
        await expect(healthz.locator(".live-responses-table tbody .response-col_status")
                     ).to_have_text("200")
        await expect(healthz.locator(".live-responses-table")).to_contain_text('"status"')
        assert await page.evaluate("window.__violations") == [], "blocked by the policy"
        assert errors == []


async def test_simulator_page_shows_texts_and_texts_back_as_the_member(
        browser: Browser, sending: Sending, send_settings: Settings) -> None:
    church, number, (phone,) = await sending.church(members=1)
    page, errors = await new_page(browser)
    async with failure_artifacts(page, "simulator_page"), \
            running_worker(sending.client, send_settings):
        await sending.broadcast(church, {"body": "Service at 10 <b>sharp</b>",
                                         "target": {"all": True}})
        resp = await page.goto(f"{sending.sim.base_url}/")
        assert resp is not None and resp.status == 200
        thread = page.locator(f'.thread[data-member="{phone}"]')
        await expect(thread.locator(".church")).to_have_text(number)
        first = thread.locator(".message.outbound").first
        await expect(first.locator(".body")).to_have_text("Service at 10 <b>sharp</b>")
        # the status follows the receipts the simulator sends the service
        await expect(first.locator(".status")).to_have_text("delivered")

        await thread.locator(".text").fill(HOSTILE)
        await thread.locator(".send").click()
        reply = thread.locator(".message.inbound").last
        await expect(reply.locator(".body")).to_have_text(HOSTILE)
        await expect(reply.locator(".status")).to_have_text("received")
        assert await thread.locator(".messages img, .messages script, .messages b").count() == 0
        assert await page.evaluate("window.__pwned") is None
        await _conversation_shows(sending, church, phone, HOSTILE)

        await _keyword(page, thread, "stop", "STOP")
        await _member_is(sending, church, phone, "opted_out")
        await _keyword(page, thread, "start", "START")
        await _member_is(sending, church, phone, "opted_in")
        assert await page.evaluate("window.__violations") == [], "blocked by the policy"
        assert errors == []


async def _keyword(page: Page, thread: Any, button: str, word: str) -> None:
    """Press STOP or START: the member's text is received, and the church's confirmation
    (sent by the worker) arrives on the phone."""
    before = await thread.locator(".message.outbound").count()
    await thread.locator(f".{button}").click()
    await expect(thread.locator(".message.inbound").last.locator(".body")).to_have_text(word)
    await expect(thread.locator(".message.inbound").last.locator(".status")
                 ).to_have_text("received")
    await expect(thread.locator(".message.outbound")).to_have_count(before + 1)


async def _get(sending: Sending, church: Any, path: str) -> Any:
    resp = await sending.client.get(path, headers=church.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _conversation_shows(sending: Sending, church: Any, phone: str, body: str) -> None:
    async def found() -> Any:
        page = await _get(sending, church, "/api/v1/conversations")
        return [c for c in page["items"] if c["member"]["phone"] == phone
                and c["last_message"]["body"] == body]

    (conversation,) = await wait_until(found)
    assert conversation["last_message"]["direction"] == "inbound"
    thread = await _get(sending, church, f"/api/v1/conversations/{conversation['id']}/messages")
    assert thread["items"][0]["body"] == body


async def _member_is(sending: Sending, church: Any, phone: str, state: str) -> None:
    async def found() -> bool:
        page = await _get(sending, church, f"/api/v1/members?opt_in={state}")
        return any(m["phone"] == phone for m in page["items"])

    await wait_until(found)
