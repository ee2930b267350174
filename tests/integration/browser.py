"""Headless Chromium for the browser tests, driven by Playwright over the DevTools protocol.

The browser is Debian's `chromium` (`.ci/run` installs it when missing), launched by path:
Playwright's own browser downloads are never used. A test module skips with the reason when no
chromium is on PATH. `failure_artifacts` keeps a screenshot and the page's HTML under
`test-artifacts/` (README "Testing") when the test body fails.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ywmessaging.config import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO_ROOT / "test-artifacts"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; "
                             ".ci/run installs it as root or through sudo)")
# Collects the page's Content-Security-Policy violations (an init script runs outside the
# page's policy, before the page's own scripts).
WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""

__all__ = ["browser", "failure_artifacts", "needs_chromium", "new_page"]
# A page's assertions wait up to 15 s (Playwright's default is 5 s): on two busy cores a
# receipt or a worker's send can take longer than that.
expect.set_options(timeout=15_000)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium, closed after the test."""
    assert CHROMIUM is not None
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(browser: Browser) -> tuple[Page, list[str]]:
    """A page in a fresh context, and the list its console errors are appended to."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.add_init_script(WATCH_POLICY)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    return page, errors


@asynccontextmanager
async def failure_artifacts(page: Page, name: str) -> AsyncIterator[None]:
    """On a failure inside the block, keep `test-artifacts/<name>.png` and `.html`."""
    try:
        yield
    except BaseException:
        await _keep(page, re.sub(r"[^\w.-]", "_", name))
        raise


async def _keep(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot: Path = ARTIFACTS / f"{name}.png"
    try:
        await page.screenshot(path=str(shot), full_page=True, timeout=5_000)
        (ARTIFACTS / f"{name}.html").write_text(await page.content())
    except Exception as exc:  # the browser may be the thing that broke; the failure matters
        (ARTIFACTS / f"{name}.txt").write_text(f"no screenshot: {exc!r}")

