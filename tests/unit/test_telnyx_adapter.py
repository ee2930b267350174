"""Edges of the Telnyx adapter that the simulator's happy paths do not reach: error bodies
without a code, and ids that must be URL-encoded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from ywmessaging.messaging.carrier import CarrierError, SendRequest
from ywmessaging.messaging.simulator import RunningSimulator, start_simulator
from ywmessaging.messaging.simulator.state import phone_number_record
from ywmessaging.messaging.telnyx import TelnyxCarrier

A, B = "+12065550100", "+12065550199"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(api_key="sk-test")
    yield running
    await running.stop()


async def _serve(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.parametrize("errors", [
    [{"title": "Bad Request", "detail": "no code here"}],
    [{"code": None, "title": "Bad Request"}],
])
async def test_an_error_without_a_code_has_no_code(errors: list[dict[str, object]]) -> None:
    """A Telnyx-shaped error with no `code` must not become the code "None"."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=400, body=orjson.dumps({"errors": errors}),
                            content_type="application/json")

    runner, base = await _serve(handler)
    carrier = TelnyxCarrier(api_base=base, api_key="k", timeout=2.0)
    try:
        with pytest.raises(CarrierError) as exc:
            await carrier.send(SendRequest(A, B, "x"))
    finally:
        await carrier.close()
        await runner.cleanup()
    assert (exc.value.code, exc.value.http_status, exc.value.retryable) == (None, 400, False)
    assert "None" not in str(exc.value)


async def test_release_url_encodes_the_number_id(sim: RunningSimulator) -> None:
    """An id with `/`, `?` or a space reaches the carrier as one path segment."""
    odd = "12/34?x y"
    sim.state.numbers[odd] = phone_number_record(odd, A, "active")
    carrier = TelnyxCarrier(api_base=sim.base_url, api_key="sk-test", timeout=2.0)
    try:
        await carrier.release_number(A)
    finally:
        await carrier.close()
    assert sim.state.number(A) is None
