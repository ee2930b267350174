"""Request validation benchmark: what checking requests against openapi.yaml costs on a hot route.

The app runs with all its plug-ins on a loopback port (client in the same process). Two routes,
`POST /api/v1/members` (a body of six fields) and `GET /api/v1/members?limit=50&sort=name`
(query parameters; the page's JSON is PostgreSQL's, passed through), each in alternating rounds
with the contract check on (as shipped) and off (the baseline: `contract.check_body` and
`check_query` replaced by pass-throughs, so only the handlers' own cleaning runs, as before).
Per route and mode: requests per second with 16 in flight, and CPU per request (process time,
client included, over the same requests; noisy on a shared machine). Then the check alone,
in-process: microseconds per body for a valid member and for one with six bad fields, per list
query, and, when msgspec is installed, the same body decoded and validated by a msgspec Struct
(the alternative the issue named).

    .venv/bin/python -m benchmarks.request_validation [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging import contract
from ywmessaging.errors import ValidationFailed

from .common import deployment, progress, quick_main, target_line

PASSWORD = "benchmark passphrase 42"
LINE = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0][^\x00-\x1F\x7F-\x9F]*$"
EMAIL = r"^\s*[^\s@]+@[^\s@]+\.[^\s@]+\s*$"
IN_FLIGHT = 16
_PHONES = itertools.count()
MEMBER = {"first_name": "Ada", "last_name": "Lovelace", "phone": "", "email": "ada@example.org",
          "group_ids": [], "branch_id": None}
BAD = {"first_name": "", "last_name": None, "phone": "x" * 33, "email": "nope",
       "group_ids": ["a"], "nick": 1}


try:
    import msgspec
except ImportError:
    msgspec = None
else:
    NameT = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=LINE)]

    class MemberCreate(msgspec.Struct, forbid_unknown_fields=True):
        """The same body as a msgspec Struct (decoded and validated in one pass)."""

        first_name: NameT
        last_name: NameT
        phone: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=LINE)]
        email: Annotated[str, msgspec.Meta(max_length=254, pattern=EMAIL)] | None = None
        group_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=1000)] | None = None
        branch_id: uuid.UUID | None = None


def _member() -> dict[str, Any]:
    n = next(_PHONES)   # at most 10,000 members: every Los Angeles line below is dialable
    body = {k: v for k, v in MEMBER.items() if v is not None}
    body["phone"], body["first_name"] = f"+1213373{n % 10000:04d}", f"Ada {n}"
    return body


@contextmanager
def contract_off() -> Iterator[None]:
    """The baseline: no schema step (the handlers' own checks still run)."""
    body, query = contract.check_body, contract.check_query
    contract.check_body = lambda spec, op, b: None  # type: ignore[assignment]
    contract.check_query = lambda spec, op, q: dict(q)  # type: ignore[assignment]
    try:
        yield
    finally:
        contract.check_body, contract.check_query = body, query


async def _load(total: int, call: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(requests per second, CPU ms per request) with IN_FLIGHT concurrent callers."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return total / wall, cpu * 1000 / total


async def _measure(base: str, n: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    results: dict[tuple[str, str], list[float]] = {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/auth/register", json={
                "church_name": "Bench Church", "email": "bench-validation@example.org",
                "password": PASSWORD, "first_name": "B", "last_name": "V"}) as resp:
            token = (await resp.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        async def post() -> None:
            async with http.post(f"{base}/api/v1/members", json=_member(), headers=auth) as r:
                assert r.status == 201, await r.text()
                await r.read()

        async def get() -> None:
            async with http.get(f"{base}/api/v1/members?limit=50&sort=name",
                                headers=auth) as r:
                assert r.status == 200, await r.text()
                await r.read()

        for _ in range(60):
            await post()
        for round_no in range(rounds):
            for mode in ("on", "off") if round_no % 2 == 0 else ("off", "on"):
                for route, call in (("post", post), ("get", get)):
                    if mode == "off":
                        with contract_off():
                            rps, cpu = await _load(n, call)
                    else:
                        rps, cpu = await _load(n, call)
                    results.setdefault((route, mode), []).extend([rps, cpu])
                    progress(f"round {round_no} {route} contract {mode}: {rps:.0f} req/s, "
                             f"{cpu:.3f} ms CPU/request")
    return results


def _micro(n: int) -> dict[str, float]:
    spec = contract.load()
    op = spec.operation("POST", "/api/v1/members")
    out: dict[str, float] = {}
    good, bad = _member(), BAD
    raw_good = orjson.dumps(good)

    def timed(name: str, fn: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out[name] = (time.perf_counter() - t0) * 1e6 / n

    def check(body: dict[str, Any]) -> None:
        with contextlib.suppress(ValidationFailed):   # the 422 is what is being timed
            contract.check_body(spec, op, body)

    timed("orjson_loads", lambda: orjson.loads(raw_good))
    timed("contract_valid", lambda: check(orjson.loads(raw_good)))
    timed("contract_6_errors", lambda: check(bad))
    list_op = spec.operation("GET", "/api/v1/members")
    query = [("limit", "50"), ("sort", "name")]
    timed("contract_query_list", lambda: contract.check_query(spec, list_op, query))
    if msgspec is None:   # not a dependency: measured only when installed
        return out
    decoder = msgspec.json.Decoder(MemberCreate)
    timed("msgspec_decode_valid", lambda: decoder.decode(raw_good))
    return out


async def run(quick: bool) -> list[str]:
    """Measure everything; the TARGET lines."""
    n, rounds, micro_n = (200, 2, 2000) if quick else (600, 8, 20000)   # ≤ 10,000 members
    async with deployment() as dep:
        app = app_module.create_app(dep.settings.with_(log_level="warning"))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            results = await _measure(f"http://127.0.0.1:{server.port}", n, rounds)
        finally:
            await server.close()
    micro = _micro(micro_n)
    lines = []
    for route in ("post", "get"):
        on, off = results[(route, "on")], results[(route, "off")]
        rps_on, rps_off = sum(on[0::2]) / len(on[0::2]), sum(off[0::2]) / len(off[0::2])
        cpu_on, cpu_off = sum(on[1::2]) / len(on[1::2]), sum(off[1::2]) / len(off[1::2])
        print(f"{route.upper()} /api/v1/members: contract on {rps_on:.0f} req/s "
              f"{cpu_on:.3f} ms CPU/req; off {rps_off:.0f} req/s {cpu_off:.3f} ms CPU/req; "
              f"CPU +{(cpu_on - cpu_off) * 1000:.0f} µs/req ({cpu_on / cpu_off:.3f}x)")
        lines.append(target_line(f"validation_cpu_ratio_{route}_members", cpu_on / cpu_off,
                                 1.10))
    for name, us in micro.items():
        print(f"in-process {name}: {us:.1f} µs per call")
    lines.append(target_line("contract_check_member_body_us",
                             micro["contract_valid"] - micro["orjson_loads"], 10))
    lines.append(target_line("contract_check_list_query_us", micro["contract_query_list"], 10))
    return lines


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    quick_main(__doc__, run)


if __name__ == "__main__":
    main()
