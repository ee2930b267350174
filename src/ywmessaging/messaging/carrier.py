"""The carrier interface every sender codes against (Telnyx over HTTP, or the simulator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# CarrierError.code when the connection dropped AFTER the request was written: the carrier may
# have accepted the message, so the caller must mark the row `unknown` and never resend blindly.
SEND_OUTCOME_UNKNOWN = "send_outcome_unknown"
# Telnyx error code for "Blocked due to STOP message": permanent, the member is opted out.
OPTED_OUT_CODE = "40300"
# CarrierError.code when the carrier refused to release a number (404) yet still lists it:
# the number is not verifiably gone, so it must not be taken off the church.
RELEASE_UNCONFIRMED = "release_unconfirmed"
ORDER_STATUSES = ("pending", "success", "failure")


@dataclass(frozen=True)
class SendRequest:
    """One SMS (or MMS with `media_urls`) to send: sender and recipient in E.164, the body,
    optional media, profile and webhook."""

    from_number: str
    to_number: str
    text: str
    messaging_profile_id: str | None = None
    webhook_url: str | None = None
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendResult:
    """What the carrier answered: its message id (the receipt correlation key) and parts."""

    carrier_message_id: str
    segments: int | None = None


@dataclass(frozen=True)
class NumberOrder:
    """A carrier number order: its id, its status (`pending`, `success`, `failure`) and each
    ordered number's own status (E.164 → status)."""

    order_id: str
    status: str
    numbers: tuple[tuple[str, str], ...] = ()

    def status_of(self, e164: str) -> str:
        """How the order went for `e164` (its line's status, else the order's)."""
        return next((status for number, status in self.numbers if number == e164), self.status)


class CarrierError(Exception):
    """A send or number operation failed; `retryable` says whether trying again may help.

    `code` is the carrier's error code string (e.g. "40300" opted out, "10011" rate limited) or
    `SEND_OUTCOME_UNKNOWN`; `retry_after` is seconds from a `Retry-After` header when present.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    @property
    def outcome_unknown(self) -> bool:
        """True when the carrier may have accepted the message (do not resend)."""
        return self.code == SEND_OUTCOME_UNKNOWN

    @property
    def opted_out(self) -> bool:
        """True when the carrier refused because the recipient sent STOP."""
        return self.code == OPTED_OUT_CODE


class Carrier(Protocol):
    """One interface, two implementations (Telnyx over HTTP; the simulator speaks the same API)."""

    async def send(self, req: SendRequest) -> SendResult:
        """Send one message; raise CarrierError on failure."""
        ...

    async def get_message(self, carrier_message_id: str) -> dict[str, Any] | None:
        """The carrier's current record of a sent message (its `to[0].status`, `errors`), or
        None when it does not know the id; raise CarrierError on failure."""
        ...

    async def search_numbers(self, *, area_code: str | None, limit: int = 10) -> list[str]:
        """Numbers available to buy, as E.164 strings."""
        ...

    async def order_number(self, e164: str) -> NumberOrder:
        """Order a number; the order usually answers `pending` (the number is not ours until
        it completes). A lost answer raises code `send_outcome_unknown`: the order may exist."""
        ...

    async def get_number_order(self, order_id: str) -> NumberOrder | None:
        """The order as the carrier sees it now, or None when it does not know the id."""
        ...

    async def find_number(self, e164: str) -> str | None:
        """The id the carrier lists `e164` under on the account, or None when it does not."""
        ...

    async def release_number(self, e164: str) -> None:
        """Give a number back: found by E.164 at the carrier and released by the id listed
        there; a number the carrier no longer lists counts as released, a 404 for one it still
        lists raises code `release_unconfirmed`."""
        ...

    async def create_brand(self, body: dict[str, Any]) -> dict[str, Any]:
        """Register a 10DLC brand (Telnyx's field names); the brand record."""
        ...

    async def update_brand(self, brand_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Correct a 10DLC brand (a rejected one is vetted again); the brand record."""
        ...

    async def get_brand(self, brand_id: str) -> dict[str, Any] | None:
        """A 10DLC brand as the carrier sees it now, or None when it does not know the id."""
        ...

    async def create_campaign(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit a 10DLC campaign for a brand; the campaign record."""
        ...

    async def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """A 10DLC campaign as the carrier sees it now, or None when it does not know it."""
        ...

    async def assign_number(self, e164: str, campaign_id: str) -> dict[str, Any]:
        """Put a number on an approved 10DLC campaign; the assignment record."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...

