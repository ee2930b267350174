"""Planning Center's pure parts: the signed OAuth state, PKCE, the client's rate limiter,
reading People pages, and matching people to members."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from typing import Any

import pytest

from ywmessaging.integrations.pco_client import RateLimiter
from ywmessaging.integrations.pco_people import PersonRow, Skip, parse_page, plan_page
from ywmessaging.integrations.pco_state import (
    InvalidState,
    new_state,
    pkce_pair,
    read_state,
    state_key,
)

KEY = state_key("k" * 40)


def test_a_state_round_trips_and_names_church_and_admin() -> None:
    t, a = uuid.uuid4(), uuid.uuid4()
    state, claims = new_state(KEY, t, a, now=1000.0)
    got = read_state(KEY, state, now=1000.0 + 599)
    assert (got.tenant_id, got.admin_id, got.nonce) == (t, a, claims.nonce)


@pytest.mark.parametrize("mangle", [
    lambda s: s + "x",                                   # signature changed
    lambda s: "A" + s[1:],                               # body changed
    lambda s: s.split(".")[0],                           # no signature
    lambda s: "",
])
def test_a_tampered_state_is_refused(mangle: Any) -> None:
    state, _ = new_state(KEY, uuid.uuid4(), uuid.uuid4(), now=1000.0)
    with pytest.raises(InvalidState):
        read_state(KEY, mangle(state), now=1000.0)


def test_a_state_expires_and_needs_this_deployments_key() -> None:
    state, _ = new_state(KEY, uuid.uuid4(), uuid.uuid4(), now=1000.0)
    with pytest.raises(InvalidState):
        read_state(KEY, state, now=1000.0 + 601)
    with pytest.raises(InvalidState):
        read_state(state_key("o" * 40), state, now=1000.0)


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    want = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == want.decode()
    assert pkce_pair()[0] != verifier


async def test_the_limiter_never_lets_more_than_the_limit_into_a_window() -> None:
    lim = RateLimiter(limit=5, period=0.2)
    sent: list[float] = []

    async def one() -> None:
        await lim.acquire()
        sent.append(time.monotonic())

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(12)))
    assert time.monotonic() - t0 >= 2 * 0.2              # 12 at 5 per window: two waits
    sent.sort()
    for i in range(len(sent) - 5):
        assert sent[i + 5] - sent[i] >= 0.2               # any 6 span more than a window
    lim.configure(100, 20)
    assert (lim.limit, lim.period) == (100, 20)
    lim.configure(0, 20)                                  # nonsense headers change nothing
    assert lim.limit == 100


def _page(*people: dict[str, Any]) -> dict[str, Any]:
    data, included = [], []
    for n, p in enumerate(people):
        phones = [{"type": "PhoneNumber", "id": f"ph{n}{i}", "attributes": ph}
                  for i, ph in enumerate(p.get("phones", []))]
        emails = [{"type": "Email", "id": f"em{n}{i}", "attributes": e}
                  for i, e in enumerate(p.get("emails", []))]
        included += phones + emails
        data.append({"type": "Person", "id": p["id"],
                     "attributes": {"first_name": p.get("first", "F"), "last_name": "L"},
                     "relationships": {
                         "phone_numbers": {"data": [{"type": "PhoneNumber", "id": x["id"]}
                                                    for x in phones]},
                         "emails": {"data": [{"type": "Email", "id": x["id"]}
                                             for x in emails]}}})
    return {"data": data, "included": included}


def test_a_page_gives_the_mobile_number_in_e164_in_the_churchs_region() -> None:
    rows, skips, ids = parse_page(_page(
        {"id": "1", "phones": [{"number": "020 7946 0958", "location": "Home"},
                               {"number": "07400 123456", "location": "mobile"}],
         "emails": [{"address": "x@y.org", "primary": False},
                    {"address": "p@y.org", "primary": True}]},
        {"id": "2", "phones": [{"number": "020 7946 0958", "location": "Work"}]},
        {"id": "3", "phones": [{"number": "123", "location": "Mobile"}]},
        {"id": "4", "phones": [{"number": "07400 123457", "location": "Mobile"}],
         "emails": [{"address": "not-an-email", "primary": True}]},
    ), "GB")
    assert ids == ["1", "2", "3", "4"]
    assert rows == [PersonRow("1", "+447400123456", "F", "L", "p@y.org"),
                    PersonRow("4", "+447400123457", "F", "L", None)]
    assert skips == [Skip("2", "no_mobile_phone"), Skip("3", "invalid_phone")]


def _member(mid: str, phone: str, pid: str | None, first: str = "f", last: str = "l"
            ) -> dict[str, Any]:
    return {"id": mid, "phone": phone, "pco_person_id": pid, "first_key": first,
            "last_key": last}


def test_people_are_matched_by_id_then_by_an_unlinked_same_name_number() -> None:
    rows = [PersonRow("p1", "+12025550101", "F", "L", None),    # linked by id
            PersonRow("p2", "+12025550102", "F", "L", None),    # same number, same name
            PersonRow("p3", "+12025550103", "F", "L", None),    # number of another person
            PersonRow("p4", "+12025550104", "F", "L", None),    # number, other name
            PersonRow("p5", "+12025550105", "F", "L", None),    # new
            PersonRow("p6", "+12025550105", "F", "L", None),    # same number twice: 2nd out
            PersonRow("p7", "+12025550106", "F", "L", None),    # moved onto a held number
            PersonRow("p8", "+12025550108", "F", "L", None)]    # unknown sender (no names)
    found = [_member("m1", "+12025550101", "p1"), _member("m2", "+12025550102", None),
             _member("m3", "+12025550103", "other"),
             _member("m4", "+12025550104", None, "zed"),
             _member("m7", "+12025550199", "p7"), _member("m6", "+12025550106", None),
             _member("m8", "+12025550108", None, "", "")]
    plan = plan_page(rows, found)
    assert [(m, r.person_id) for m, r in plan.update] == [("m1", "p1"), ("m2", "p2"),
                                                          ("m8", "p8")]
    assert [r.person_id for r in plan.create] == ["p5"]
    assert plan.skips == [Skip("p3", "phone_in_use"), Skip("p4", "phone_in_use"),
                          Skip("p6", "phone_in_use"), Skip("p7", "phone_in_use")]


async def test_after_a_429_the_limiter_waits_its_retry_after() -> None:
    lim = RateLimiter(limit=100, period=20)
    await lim.acquire()
    lim.hold(0.3)
    t0 = time.monotonic()
    await lim.acquire()
    assert time.monotonic() - t0 >= 0.29
