"""Telnyx API v2 over HTTP (aiohttp, bounded timeouts); the simulator speaks the same API."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..config import Settings
from ..observability.metrics import Metrics
from .carrier import (
    ORDER_STATUSES,
    RELEASE_UNCONFIRMED,
    SEND_OUTCOME_UNKNOWN,
    Carrier,
    CarrierError,
    NumberOrder,
    SendRequest,
    SendResult,
)
from .tendlc import TenDlcApi

LOOKUP_PAGE = 250          # Telnyx's largest page
MAX_LOOKUP_PAGES = 4       # digits of a whole number match a handful of numbers at most
# Errors raised after the request bytes were written: the carrier may have acted on it.
_AFTER_SEND = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
               aiohttp.ClientOSError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.replace(".", "", 1).isdigit():
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_number_order(data: Any) -> NumberOrder | None:
    """A Telnyx number order (`data` of its answers, or a `number_order.complete` payload);
    None when it has no id or no known status."""
    if not isinstance(data, dict):
        return None
    order_id, status = data.get("id"), data.get("status")
    if not isinstance(order_id, str) or not order_id or status not in ORDER_STATUSES:
        return None
    lines = tuple((str(line["phone_number"]), str(line.get("status") or status))
                  for line in data.get("phone_numbers") or []
                  if isinstance(line, dict) and isinstance(line.get("phone_number"), str))
    return NumberOrder(order_id, str(status), lines)


def _first_error_code(body: bytes) -> tuple[str | None, str]:
    """(code, detail) of a Telnyx error body; the code is None when the error has none."""
    try:
        doc = orjson.loads(body)
        err = doc["errors"][0]
        code = err.get("code")
        return (None if code is None else str(code),
                str(err.get("detail") or err.get("title") or ""))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None, body[:200].decode("utf-8", "replace")


class TelnyxCarrier(TenDlcApi):
    """The `Carrier` implementation for Telnyx's REST API (`/v2/messages`, numbers, 10DLC)."""

    def __init__(self, *, api_base: str, api_key: str, messaging_profile_id: str | None = None,
                 timeout: float = 10.0, connect_timeout: float = 3.0,
                 observe: Callable[[str, str, float], None] | None = None) -> None:
        self._observe = observe   # (operation, result, seconds) of each call
        self._base = api_base.rstrip("/")
        self._key = api_key
        self._profile = messaging_profile_id
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=10),
            )
        return self._session

    async def _call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None, operation: str = "other",
                    unknown_after_send: bool = False) -> dict[str, Any]:
        """One API call, timed as `operation`; maps failures to CarrierError."""
        if self._observe is None:
            return await self._request(method, path, body, params, unknown_after_send)
        started, result = time.perf_counter(), "error"
        try:
            doc = await self._request(method, path, body, params, unknown_after_send)
            result = "ok"
            return doc
        except CarrierError as err:
            result = str(err.http_status) if err.http_status else (err.code or "error")
            raise
        finally:
            self._observe(operation, result, time.perf_counter() - started)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None,
                       params: dict[str, str] | None,
                       unknown_after_send: bool) -> dict[str, Any]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._http().request(method, self._base + path, data=data,
                                            params=params, headers=headers) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:   # never connected: nothing was sent
            raise CarrierError(f"carrier unreachable: {exc}", retryable=True,
                               code="connection_error") from exc
        except _AFTER_SEND as exc:
            if unknown_after_send:
                raise CarrierError("connection lost after the request was sent",
                                   retryable=False, code=SEND_OUTCOME_UNKNOWN) from exc
            raise CarrierError(f"connection lost: {exc}", retryable=True,
                               code="connection_error") from exc
        except aiohttp.ConnectionTimeoutError as exc:  # timed out connecting: nothing was sent
            raise CarrierError("carrier connect timed out", retryable=True,
                               code="timeout") from exc
        except TimeoutError as exc:
            if unknown_after_send:
                # the request went out and no answer came: the carrier may have accepted it,
                # so a retry could text the member twice
                raise CarrierError("carrier did not answer in time after the request was sent",
                                   retryable=False, code=SEND_OUTCOME_UNKNOWN) from exc
            raise CarrierError("carrier call timed out", retryable=True, code="timeout") from exc
        if status < 300:
            try:
                doc = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError as exc:
                raise CarrierError("carrier answered malformed JSON", retryable=False,
                                   code="bad_response", http_status=status) from exc
            return doc if isinstance(doc, dict) else {}
        code, detail = _first_error_code(raw)
        retryable = status in (408, 429) or status >= 500
        raise CarrierError(f"carrier HTTP {status}: {detail}", retryable=retryable, code=code,
                           http_status=status, retry_after=parse_retry_after(retry_after))

    async def send(self, req: SendRequest) -> SendResult:
        """POST /v2/messages; a drop after sending raises code `send_outcome_unknown`."""
        body: dict[str, Any] = {"from": req.from_number, "to": req.to_number, "text": req.text}
        profile = req.messaging_profile_id or self._profile
        if profile:
            body["messaging_profile_id"] = profile
        if req.webhook_url:
            body["webhook_url"] = req.webhook_url
        if req.media_urls:
            body["type"], body["media_urls"] = "MMS", list(req.media_urls)
        doc = await self._call("POST", "/v2/messages", body=body, operation="send",
                               unknown_after_send=True)
        data = doc.get("data") or {}
        msg_id = data.get("id")
        if not isinstance(msg_id, str) or not msg_id:
            # Accepted (2xx) but no id: the message may go out, so never resend it.
            raise CarrierError("carrier accepted without a message id", retryable=False,
                               code=SEND_OUTCOME_UNKNOWN)
        parts = data.get("parts")
        return SendResult(carrier_message_id=msg_id,
                          segments=parts if isinstance(parts, int) else None)

    async def get_message(self, carrier_message_id: str) -> dict[str, Any] | None:
        """GET /v2/messages/{id}: the message record with its per-recipient status (None when
        the carrier does not know the id)."""
        try:
            doc = await self._call("GET", f"/v2/messages/{quote(carrier_message_id, safe='')}",
                                   operation="get_message")
        except CarrierError as err:
            if err.http_status == 404:
                return None
            raise
        data = doc.get("data")
        return data if isinstance(data, dict) else None

    async def search_numbers(self, *, area_code: str | None, limit: int = 10) -> list[str]:
        """GET /v2/available_phone_numbers (US, SMS-capable)."""
        params = {"filter[country_code]": "US", "filter[limit]": str(limit),
                  "filter[features]": "sms"}
        if area_code:
            params["filter[national_destination_code]"] = area_code
        doc = await self._call("GET", "/v2/available_phone_numbers", params=params,
                               operation="search_numbers")
        return [str(row["phone_number"]) for row in doc.get("data") or []
                if isinstance(row, dict) and row.get("phone_number")]

    async def order_number(self, e164: str) -> NumberOrder:
        """POST /v2/number_orders: the order, usually `pending` (the number's id is looked up
        by E.164 when it is released, never taken from the order's lines). A lost answer raises
        `send_outcome_unknown`: the order may exist."""
        body: dict[str, Any] = {"phone_numbers": [{"phone_number": e164}]}
        if self._profile:
            body["messaging_profile_id"] = self._profile
        doc = await self._call("POST", "/v2/number_orders", body=body,
                               operation="order_number", unknown_after_send=True)
        order = parse_number_order(doc.get("data"))
        if order is None:   # accepted without an order we can follow: it may still go through
            raise CarrierError("carrier accepted the number order without an order id",
                               retryable=False, code=SEND_OUTCOME_UNKNOWN)
        return order

    async def get_number_order(self, order_id: str) -> NumberOrder | None:
        """GET /v2/number_orders/{id} (None when the carrier does not know the id)."""
        try:
            doc = await self._call("GET", f"/v2/number_orders/{quote(order_id, safe='')}",
                                   operation="get_number_order")
        except CarrierError as err:
            if err.http_status == 404:
                return None
            raise
        order = parse_number_order(doc.get("data"))
        if order is None:
            raise CarrierError("carrier answered a number order without id or status",
                               retryable=True, code="bad_response")
        return order

    async def find_number(self, e164: str) -> str | None:
        """The id the carrier lists `e164` under (None: not on the account).

        Telnyx's `filter[phone_number]` takes digits only ("non-numerical characters will
        result in no values being returned") and matches part of a number, so the whole number
        is compared here; an answer without a `data` list raises instead of meaning "gone"."""
        params = {"filter[phone_number]": e164.lstrip("+"), "page[size]": str(LOOKUP_PAGE)}
        for page in range(1, MAX_LOOKUP_PAGES + 1):
            doc = await self._call("GET", "/v2/phone_numbers",
                                   params={**params, "page[number]": str(page)},
                                   operation="find_number")
            rows = doc.get("data")
            if not isinstance(rows, list):
                raise CarrierError("carrier listed numbers without a data list",
                                   retryable=True, code="bad_response")
            for row in rows:
                if isinstance(row, dict) and row.get("phone_number") == e164 \
                        and row.get("status") != "deleted":
                    if not row.get("id"):
                        raise CarrierError("carrier listed the number without an id",
                                           retryable=True, code="bad_response")
                    return str(row["id"])
            meta = doc.get("meta")
            pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if not rows or not isinstance(pages, int) or page >= pages:
                return None
        raise CarrierError("too many numbers match; the lookup was not conclusive",
                           retryable=True, code="bad_response")

    async def release_number(self, e164: str) -> None:
        """DELETE /v2/phone_numbers/{id} with the id the carrier lists `e164` under. A number
        it no longer lists counts as released; a 404 for a number it still lists does not
        (raises code `release_unconfirmed`)."""
        number_id = await self.find_number(e164)
        if number_id is None:
            return
        try:
            await self._call("DELETE", f"/v2/phone_numbers/{quote(number_id, safe='')}",
                             operation="release_number")
        except CarrierError as exc:
            if exc.http_status != 404:
                raise
            if await self.find_number(e164) is not None:
                raise CarrierError("the carrier answered 404 to the release but still lists "
                                   "the number", retryable=True, code=RELEASE_UNCONFIRMED,
                                   http_status=404) from exc

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


def carrier_from_settings(settings: Settings, metrics: Metrics | None = None) -> Carrier:
    """The Telnyx HTTP adapter pointed at `settings.telnyx_api_base` (the simulator in dev);
    its calls are timed into `metrics` when given."""
    return TelnyxCarrier(
        api_base=settings.telnyx_api_base,
        api_key=settings.telnyx_api_key,
        messaging_profile_id=settings.telnyx_messaging_profile_id,
        timeout=settings.telnyx_timeout,
        observe=metrics.observe_carrier if metrics is not None else None,
    )
