"""Contract test: the carrier simulator as the official Telnyx SDK sees it.

The SDK (`telnyx` on PyPI, the Stainless-generated v4 client pinned in pyproject.toml) drives the
simulator over real HTTP for every call our adapter (`messaging/telnyx.py`) makes:
`POST /v2/messages` (SMS and MMS), `GET /v2/messages/{id}`, `GET /v2/available_phone_numbers`
(with the filters the SDK can send), `POST /v2/number_orders`, `GET /v2/number_orders/{id}`,
`GET /v2/phone_numbers` (filtered, and paged until the SDK's own auto-pager stops) and
`DELETE /v2/phone_numbers/{id}`. The client validates every answer itself
(`_strict_response_validation=True`), and each raw body is validated again with the SDK's model
classes in pydantic's strict JSON mode (exact types, required fields present) and checked for
fields the SDK does not know (a misspelt field in the simulator). Error bodies are checked
against the SDK's `APIError` model and Telnyx's published texts. Every webhook the simulator
sends is verified with the SDK's `webhooks.unwrap` (Ed25519 over `timestamp|body`) and
validated strictly against the SDK's event model of its type.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import aiohttp
import orjson
import pydantic
import pytest
import telnyx
from aiohttp import web
from telnyx.pagination import DefaultFlatPaginationMeta
from telnyx.types import (
    AvailablePhoneNumberListResponse,
    DeliveryUpdateWebhookEvent,
    InboundMessageWebhookEvent,
    MessageRetrieveResponse,
    MessageSendResponse,
    NumberOrderCreateResponse,
    NumberOrderRetrieveResponse,
    NumberOrderStatusUpdateWebhookEvent,
    NumbersPhoneNumberDetailed,
    PhoneNumberDeleteResponse,
)
from telnyx.types.messaging_10dlc.brand_retrieve_response import BrandRetrieveResponse
from telnyx.types.messaging_10dlc.phone_number_campaign import PhoneNumberCampaign
from telnyx.types.messaging_10dlc.telnyx_brand import TelnyxBrand
from telnyx.types.messaging_10dlc.telnyx_campaign_csp import TelnyxCampaignCsp
from telnyx.types.shared import APIError

from ywmessaging.messaging import signature
from ywmessaging.messaging.simulator import RunningSimulator, start_simulator

M = TypeVar("M", bound=pydantic.BaseModel)

API_KEY = "sk-contract"
OTHER = "+14155550123"            # a member's phone: never owned by the account
# Telnyx's texts for the error codes the simulator answers in these tests
# (https://developers.telnyx.com/development/api-fundamentals/api-errors)
NOT_FOUND_DETAIL = "The requested resource or URL could not be found."
# Fields Telnyx sends that these SDK models do not declare: pagination metadata beyond the two
# the pager reads, and the `meta` envelope (attempt, delivered_to) of every webhook, which the
# SDK declares on other events but not on `message.received`.
KNOWN_EXTRA = {"DefaultFlatPaginationMeta": {"total_results", "page_size"},
               "InboundMessageWebhookEvent": {"meta"}}


class PhoneNumbersPage(pydantic.BaseModel):
    """One page of `GET /v2/phone_numbers` as the SDK's auto-pager needs it (`meta` present)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    data: list[NumbersPhoneNumberDetailed]
    meta: DefaultFlatPaginationMeta


class ErrorBody(pydantic.BaseModel):
    """A Telnyx error answer: `{"errors": [APIError, ...]}` and nothing else."""

    model_config = pydantic.ConfigDict(extra="forbid")
    errors: list[APIError]


def _unknown_fields(obj: Any, path: str) -> list[str]:
    """Fields present in the JSON that the SDK model does not declare, anywhere inside."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        allowed = KNOWN_EXTRA.get(type(obj).__name__, set())
        found += [f"{path}.{k}" for k in (obj.model_extra or {}) if k not in allowed]
        for name in type(obj).model_fields:
            found += _unknown_fields(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            found += _unknown_fields(item, f"{path}[{i}]")
    return found


def strict(model: type[M], raw: bytes | str) -> M:
    """`raw` validated with an SDK model in strict JSON mode, with no field it does not know."""
    parsed = model.model_validate_json(raw, strict=True)
    unknown = _unknown_fields(parsed, model.__name__)
    assert not unknown, f"fields the SDK does not know: {unknown}"
    return parsed


def telnyx_error(exc: telnyx.APIStatusError) -> APIError:
    """The first error of an SDK exception's body, validated strictly (detail is not the title)."""
    body = strict(ErrorBody, exc.response.content)
    first = body.errors[0]
    assert first.detail and first.detail != first.title, first
    return first


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator(api_key=API_KEY)
    async with aiohttp.ClientSession() as s, s.patch(
            f"{running.base_url}/sim/config", json={"order_delay": 0.05}) as r:
        assert r.status == 200
    yield running
    await running.stop()


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[telnyx.AsyncTelnyx]:
    sdk = telnyx.AsyncTelnyx(api_key=API_KEY, public_key=sim.public_key,
                             base_url=f"{sim.base_url}/v2", max_retries=0, timeout=5.0,
                             _strict_response_validation=True)
    yield sdk
    await sdk.close()


class Hooks:
    """Webhooks the simulator sent, each verified by the SDK, by event type."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.refused: list[str] = []

    def of(self, event_type: str) -> list[bytes]:
        return [raw for kind, raw in self.events if kind == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.of(event_type)) < count:
            assert not self.refused, self.refused
            assert time.monotonic() < deadline, f"no {event_type} webhook within {timeout} s"
            await asyncio.sleep(0.02)
        return self.of(event_type)


@pytest.fixture
async def hooks(sim: RunningSimulator, client: telnyx.AsyncTelnyx) -> AsyncIterator[Hooks]:
    """A webhook endpoint that accepts only what the SDK's `webhooks.unwrap` verifies."""
    got = Hooks()

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            event = client.webhooks.unwrap(raw.decode(), headers=dict(request.headers))
        except ValueError as exc:
            got.refused.append(str(exc))
            return web.Response(status=400)
        got.events.append((str(getattr(event.data, "event_type", "")), raw))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sim.set_webhook_url(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks")
    yield got
    await runner.cleanup()


async def _own(client: telnyx.AsyncTelnyx, hooks: Hooks, numbers: list[str]) -> str:
    """Order numbers through the SDK and wait until the order completed; the order id."""
    done_before = len(hooks.of("number_order.complete"))
    raw = await client.number_orders.with_raw_response.create(
        phone_numbers=[{"phone_number": n} for n in numbers])
    order = strict(NumberOrderCreateResponse, raw.http_response.content).data
    assert order is not None and order.id
    await hooks.wait_for("number_order.complete", done_before + 1)
    return order.id


async def test_number_search_honours_every_filter_the_sdk_sends(
        client: telnyx.AsyncTelnyx) -> None:
    async def search(**filters: Any) -> list[str]:
        raw = await client.available_phone_numbers.with_raw_response.list(filter=filters)
        parsed = strict(AvailablePhoneNumberListResponse, raw.http_response.content)
        assert parsed.meta is not None and parsed.meta.total_results == len(parsed.data or [])
        for row in parsed.data or []:
            assert row.record_type == "available_phone_number" and row.region_information
        return [str(row.phone_number) for row in parsed.data or []]

    found = await search(country_code="US", national_destination_code="212",
                         features=["sms", "mms"], limit=3)
    assert found == ["+12125550100", "+12125550101", "+12125550102"]
    assert await search(country_code="CA", national_destination_code="212", limit=3) == []
    assert await search(national_destination_code="212", features=["fax", "hd_voice"]) == []
    seattle = await search(locality="Seattle", limit=2)
    assert seattle and all(n.startswith("+1206") for n in seattle)
    assert await search(locality="Springfield", administrative_area="WA", limit=2) == []
    texas = await search(administrative_area="TX", limit=2)
    assert texas and all(n[2:5] in ("512", "214", "713") for n in texas)
    # patterns apply after the area code when one is given
    assert await search(national_destination_code="212", limit=2,
                        phone_number={"ends_with": "0142"}) == ["+12125550142"]
    assert await search(national_destination_code="212", limit=2,
                        phone_number={"starts_with": "5550199"}) == ["+12125550199"]
    contains = await search(national_destination_code="206", limit=5,
                            phone_number={"contains": "0777"})
    assert contains == ["+12065550777"]
    assert await search(national_destination_code="206", limit=5,
                        phone_number={"starts_with": "777"}) == []


async def test_a_number_order_is_pending_until_it_completes(
        client: telnyx.AsyncTelnyx, hooks: Hooks) -> None:
    number = "+12125550300"
    raw = await client.number_orders.with_raw_response.create(
        phone_numbers=[{"phone_number": number}], messaging_profile_id="profile-1")
    created = strict(NumberOrderCreateResponse, raw.http_response.content).data
    assert created is not None and created.id and created.phone_numbers
    assert created.status == "pending" and created.phone_numbers[0].status == "pending"
    assert (created.messaging_profile_id, created.phone_numbers_count) == ("profile-1", 1)
    line_id = created.phone_numbers[0].id
    # while pending the number is listed as purchase-pending, under its own id
    listed = await client.phone_numbers.with_raw_response.list(
        filter={"phone_number": number[1:]})
    page = strict(PhoneNumbersPage, listed.http_response.content)
    assert [(n.phone_number, n.status) for n in page.data] == [(number, "purchase-pending")]
    assert page.data[0].id != line_id
    # completion: a verified number_order.complete webhook, and the order reads success
    [event_raw] = await hooks.wait_for("number_order.complete")
    event = strict(NumberOrderStatusUpdateWebhookEvent, event_raw)
    assert (event.data.payload.id, event.data.payload.status) == (created.id, "success")
    assert event.data.payload.phone_numbers is not None
    assert event.data.payload.phone_numbers[0].status == "success"
    got = await client.number_orders.with_raw_response.retrieve(created.id)
    order = strict(NumberOrderRetrieveResponse, got.http_response.content).data
    assert order is not None and order.status == "success"
    listed = await client.phone_numbers.with_raw_response.list(
        filter={"phone_number": number[1:]})
    assert [n.status for n in strict(PhoneNumbersPage, listed.http_response.content).data] == [
        "active"]
    with pytest.raises(telnyx.NotFoundError) as exc:
        await client.number_orders.retrieve("no-such-order")
    assert (telnyx_error(exc.value).code, exc.value.status_code) == ("10005", 404)


async def test_phone_numbers_pages_end_and_every_row_is_complete(
        client: telnyx.AsyncTelnyx, hooks: Hooks) -> None:
    numbers = [f"+13125550{i:03d}" for i in range(100, 105)]
    await _own(client, hooks, numbers)
    raw = await client.phone_numbers.with_raw_response.list(page_size=2)
    first = strict(PhoneNumbersPage, raw.http_response.content)
    assert (first.meta.page_number, first.meta.total_pages, len(first.data)) == (1, 3, 2)
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for row in client.phone_numbers.list(page_size=2):
            seen.append(row.phone_number)
            assert len(seen) <= len(numbers), "the SDK's pager does not stop"
    assert sorted(seen) == numbers
    last = await client.phone_numbers.with_raw_response.list(page_size=2, page_number=3)
    assert [n.phone_number for n in strict(PhoneNumbersPage,
                                           last.http_response.content).data] == [seen[-1]]
    # the filter our adapter uses to find a number's id: digits only
    digits = await client.phone_numbers.with_raw_response.list(
        filter={"phone_number": numbers[2][1:]})
    assert [n.phone_number for n in strict(PhoneNumbersPage,
                                           digits.http_response.content).data] == [numbers[2]]


async def test_messages_sms_and_mms_from_an_owned_number_only(
        client: telnyx.AsyncTelnyx, hooks: Hooks, sim: RunningSimulator) -> None:
    ours = "+12065550188"
    await _own(client, hooks, [ours])
    raw = await client.messages.with_raw_response.send(from_=ours, to=OTHER, text="Hello")
    sms = strict(MessageSendResponse, raw.http_response.content).data
    assert sms is not None and sms.id and sms.type == "SMS" and sms.parts == 1
    assert sms.to and sms.to[0].status == "queued"
    raw = await client.messages.with_raw_response.send(
        from_=ours, to=OTHER, text="Picnic", subject="Sunday",
        media_urls=["https://example.org/picnic.jpg"])
    mms = strict(MessageSendResponse, raw.http_response.content).data
    assert mms is not None and mms.type == "MMS" and mms.subject == "Sunday"
    assert [m.url for m in mms.media or []] == ["https://example.org/picnic.jpg"]
    got = await client.messages.with_raw_response.retrieve(mms.id or "")
    again = strict(MessageRetrieveResponse, got.http_response.content).data
    assert again is not None and again.id == mms.id and again.type == "MMS"
    # receipts: both messages reach `message.finalized`, verified and strictly shaped
    finals = await hooks.wait_for("message.finalized", 2)
    for event_raw in (*hooks.of("message.sent"), *finals):
        event = strict(DeliveryUpdateWebhookEvent, event_raw)
        assert event.data and event.data.payload and event.data.payload.id in (sms.id, mms.id)
    # a number the account does not own cannot send
    with pytest.raises(telnyx.BadRequestError) as exc:
        await client.messages.send(from_="+12065550999", to=OTHER, text="Not ours")
    assert telnyx_error(exc.value).code == "40305"
    # an inbound text comes as a verified message.received
    async with aiohttp.ClientSession() as s, s.post(
            f"{sim.base_url}/sim/inbound", json={"from": OTHER, "to": ours, "text": "STOP"}) as r:
        assert r.status == 200
    [received] = await hooks.wait_for("message.received")
    inbound = strict(InboundMessageWebhookEvent, received)
    assert inbound.data and inbound.data.payload and inbound.data.payload.text == "STOP"
    # an inbound MMS: media items as Telnyx describes them (url, content_type, size, hash_sha256)
    async with aiohttp.ClientSession() as s, s.post(f"{sim.base_url}/sim/inbound", json={
            "from": OTHER, "to": ours, "text": "", "media": [
                "https://example.org/in.png",
                {"url": "https://example.org/in.mp4", "content_type": "video/mp4",
                 "size": 99}]}) as r:
        assert r.status == 200
    mms_in = strict(InboundMessageWebhookEvent, (await hooks.wait_for("message.received", 2))[1])
    payload = mms_in.data.payload if mms_in.data else None
    assert payload is not None and payload.type == "MMS" and payload.media
    assert [(m.url, m.content_type, m.size) for m in payload.media] == [
        ("https://example.org/in.png", "image/png", 48213),
        ("https://example.org/in.mp4", "video/mp4", 99)]
    assert all(m.hash_sha256 and len(m.hash_sha256) == 64 for m in payload.media)


async def test_release_and_the_errors_telnyx_answers(
        client: telnyx.AsyncTelnyx, hooks: Hooks, sim: RunningSimulator) -> None:
    number = "+16175550111"
    await _own(client, hooks, [number])
    page = await client.phone_numbers.list(filter={"phone_number": number[1:]})
    [row] = page.data
    raw = await client.phone_numbers.with_raw_response.delete(row.id)
    deleted = strict(PhoneNumberDeleteResponse, raw.http_response.content).data
    assert deleted is not None and (deleted.id, deleted.status) == (row.id, "deleted")
    with pytest.raises(telnyx.NotFoundError) as exc:
        await client.phone_numbers.delete(row.id)
    error = telnyx_error(exc.value)
    assert (error.code, error.title, error.detail) == ("10005", "Resource not found",
                                                       NOT_FOUND_DETAIL)
    # an unknown route answers Telnyx's JSON errors body, not plain text
    with pytest.raises(telnyx.NotFoundError) as exc:
        await client.get("/no_such_resource", cast_to=object)
    assert exc.value.response.headers["content-type"].startswith("application/json")
    assert telnyx_error(exc.value).code == "10005"
    # a wrong key: 401 with Telnyx's authentication error
    wrong = telnyx.AsyncTelnyx(api_key="wrong", base_url=f"{sim.base_url}/v2", max_retries=0)
    try:
        with pytest.raises(telnyx.AuthenticationError) as auth:
            await wrong.phone_numbers.list()
    finally:
        await wrong.close()
    assert telnyx_error(auth.value).code == "10009"


async def test_a_tampered_webhook_fails_the_sdks_verification(
        client: telnyx.AsyncTelnyx, hooks: Hooks, sim: RunningSimulator) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{sim.base_url}/sim/inbound",
            json={"from": OTHER, "to": "+12065550100", "text": "hi"}) as r:
        assert r.status == 200
    [raw] = await hooks.wait_for("message.received")
    doc = orjson.loads(raw)
    doc["data"]["payload"]["text"] = "HI"
    headers = signature.signed_headers(sim.state.key, raw)
    assert client.webhooks.unwrap(raw.decode(), headers=headers) is not None
    with pytest.raises(ValueError, match="Signature verification failed"):
        client.webhooks.unwrap(orjson.dumps(doc).decode(), headers=headers)


async def test_10dlc_brand_campaign_and_assignment_as_the_sdk_sees_them(
        client: telnyx.AsyncTelnyx, hooks: Hooks, sim: RunningSimulator) -> None:
    raw = await client.messaging_10dlc.brand.with_raw_response.create(
        country="US", display_name="Grace Church", email="office@grace.example.org",
        entity_type="NON_PROFIT", vertical="NGO", company_name="Grace Church Inc",
        ein="911234567", phone="+12065550100", street="100 Pine St", city="Seattle",
        state="WA", postal_code="98101", website="https://grace.example.org")
    brand = strict(TelnyxBrand, raw.http_response.content)
    assert brand.brand_id and brand.status == "REGISTRATION_PENDING"
    await hooks.wait_for("10dlc.brand.update")   # BRAND_ADD, verified by the SDK
    # campaigns need a verified brand
    with pytest.raises(telnyx.UnprocessableEntityError):
        await client.messaging_10dlc.campaign_builder.submit(
            brand_id=brand.brand_id, description="Church news", usecase="MIXED")
    async with aiohttp.ClientSession() as s, s.post(
            f"{sim.base_url}/sim/10dlc/brand/{brand.brand_id}",
            json={"status": "approved"}) as r:
        assert r.status == 200
    await hooks.wait_for("10dlc.brand.update", 2)
    got = await client.messaging_10dlc.brand.with_raw_response.retrieve(brand.brand_id)
    read = strict(BrandRetrieveResponse, got.http_response.content)
    assert (read.status, read.identity_status) == ("OK", "VERIFIED")
    updated = await client.messaging_10dlc.brand.with_raw_response.update(
        brand.brand_id, country="US", display_name="Grace", email="office@grace.example.org",
        entity_type="NON_PROFIT", vertical="NGO")
    assert strict(TelnyxBrand, updated.http_response.content).display_name == "Grace"
    async with aiohttp.ClientSession() as s, s.post(
            f"{sim.base_url}/sim/10dlc/brand/{brand.brand_id}",
            json={"status": "approved", "webhook": False}) as r:
        assert r.status == 200
    raw = await client.messaging_10dlc.campaign_builder.with_raw_response.submit(
        brand_id=brand.brand_id, description="Service times and events for members.",
        usecase="MIXED", sample1="Grace Church: service at 10am.", message_flow="Web form",
        sub_usecases=[], mno_ids=[10017], terms_and_conditions=True)
    campaign = strict(TelnyxCampaignCsp, raw.http_response.content)
    assert campaign.campaign_status == "TCR_ACCEPTED" and campaign.sample1
    async with aiohttp.ClientSession() as s, s.post(
            f"{sim.base_url}/sim/10dlc/campaign/{campaign.campaign_id}",
            json={"status": "MNO_PROVISIONED"}) as r:
        assert r.status == 200
    await hooks.wait_for("10dlc.campaign.update")
    got = await client.messaging_10dlc.campaign.with_raw_response.retrieve(
        campaign.campaign_id)
    assert strict(TelnyxCampaignCsp, got.http_response.content).campaign_status == \
        "MNO_PROVISIONED"
    number = "+12125550400"
    await _own(client, hooks, [number])
    raw = await client.messaging_10dlc.phone_number_campaigns.with_raw_response.create(
        campaign_id=campaign.campaign_id, phone_number=number)
    assigned = strict(PhoneNumberCampaign, raw.http_response.content)
    assert (assigned.phone_number, assigned.assignment_status) == (number,
                                                                   "PENDING_ASSIGNMENT")
    await hooks.wait_for("10dlc.phone_number.update")
    with pytest.raises(telnyx.NotFoundError) as exc:
        await client.messaging_10dlc.campaign.retrieve("no-such-campaign")
    assert telnyx_error(exc.value).code == "10005"
