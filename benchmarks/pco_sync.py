"""Planning Center benchmark: the first (full) sync of 10,000 people from the simulator,
within its rate limit (100 requests per 20 s), against the floor that limit sets.

The app runs with all its plug-ins on a loopback port (client in the same process), the
Planning Center simulator in the same process. A church connects through the whole OAuth
round trip (authorize → callback → tokens, organization, webhook subscriptions) and its
first sync runs; timed from the callback to the run's `done` (polled every 100 ms). The
floor: R requests (counted by the simulator) at L per P seconds cannot all be sent in less
than ⌊(R − 1) / L⌋ · P seconds (a sliding window lets L go at once, then L more each P).
Baseline, same run: the same connect and sync against a second simulator whose limit is
lifted (the work without the pacing). The best possible is max(floor, baseline).

    .venv/bin/python -m benchmarks.pco_sync [--quick] [-n PEOPLE]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging.integrations.pco_sim import RunningPcoSim, start_pco_sim

from .common import deployment, progress, target_line

PASSWORD = "benchmark passphrase 42"
SLACK_S = 2.0      # goal: within max(floor, baseline) + this, and never a 429


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _sim_call(http: aiohttp.ClientSession, sim: RunningPcoSim, method: str, path: str,
                    body: Any = None) -> Any:
    async with http.request(method, f"{sim.base_url}{path}", json=body) as resp:
        return await resp.json(content_type=None)


async def _connect_and_sync(http: aiohttp.ClientSession, base: str, sim: RunningPcoSim
                            ) -> dict[str, Any]:
    """Sign up, connect through OAuth, wait for the first sync; its figures."""
    async with http.post(f"{base}/api/v1/auth/register", json={
            "church_name": "Benchmark Church", "email": f"b-{secrets.token_hex(4)}@example.org",
            "password": PASSWORD, "first_name": "B", "last_name": "M"}) as resp:
        token = (await resp.json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    pco = f"{base}/api/v1/integrations/planning-center"
    async with http.post(f"{pco}/connect", headers=auth) as resp:
        url = (await resp.json())["authorization_url"]
    async with http.get(url, allow_redirects=False) as resp:
        back = urlsplit(resp.headers["Location"])
    t0 = time.perf_counter()
    async with http.get(f"{base}{back.path}?{back.query}", allow_redirects=False) as resp:
        assert "connected" in resp.headers["Location"], resp.headers["Location"]
    while True:
        async with http.get(pco, headers=auth) as resp:
            run = (await resp.json())["last_run"]
        if run and run["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.1)
    wall = time.perf_counter() - t0
    stats = await _sim_call(http, sim, "GET", "/sim/stats")
    assert run["status"] == "done", run
    return {"wall": wall, "run": run, "served": stats.get("served", 0),
            "limited": stats.get("rate_limited", 0), "max_in_window": stats["max_in_window"]}


async def _one(dep: Any, http: aiohttp.ClientSession, n: int, *, limited: bool
               ) -> dict[str, Any]:
    sim = await start_pco_sim()
    port = _free_port()
    here = f"http://127.0.0.1:{port}"
    settings = dep.settings.with_(pco_api_base=sim.base_url, log_level="warning",
                                  pco_redirect_url=f"{here}/api/v1/integrations/"
                                                   "planning-center/callback",
                                  pco_webhook_url=f"{here}/webhooks/planning-center")
    server = TestServer(app_module.create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        await _sim_call(http, sim, "POST", "/sim/people/bulk", {"count": n})
        if not limited:
            await _sim_call(http, sim, "POST", "/sim/config", {"rate_limit": 1_000_000})
        return await _connect_and_sync(http, here, sim)
    finally:
        await server.close()
        await sim.stop()


async def run(n: int) -> list[str]:
    """Baseline, then the paced sync; the TARGET lines."""
    async with deployment() as dep, aiohttp.ClientSession() as http:
        progress(f"baseline: connect and sync {n} people, rate limit lifted")
        base = await _one(dep, http, n, limited=False)
        progress(f"baseline {base['wall']:.2f} s, {base['served']} requests")
        progress(f"paced: connect and sync {n} people at 100 requests per 20 s")
        paced = await _one(dep, http, n, limited=True)
    limit, period = 100, 20.0
    floor = ((paced["served"] - 1) // limit) * period
    best = max(floor, base["wall"])
    run_ = paced["run"]
    print(f"people {n}: created {run_['created']}, skipped {run_['skipped']}, "
          f"requests {paced['served']} (sync run {run_['requests']})")
    print(f"paced wall {paced['wall']:.2f} s; floor {floor:.1f} s "
          f"(⌊({paced['served']} − 1) / {limit}⌋ × {period:g} s); baseline without the "
          f"limit {base['wall']:.2f} s; best possible {best:.2f} s; "
          f"ratio to best {paced['wall'] / best:.3f}")
    print(f"most requests in any {period:g} s window: {paced['max_in_window']} "
          f"(limit {limit}); 429 answers: {paced['limited']}")
    return [
        target_line("pco_sync_wall_over_best_s", paced["wall"] - best, SLACK_S),
        target_line("pco_sync_429s", paced["limited"], 0),
        target_line("pco_sync_max_in_window", paced["max_in_window"], limit),
    ]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3,000 people (under a minute)")
    parser.add_argument("-n", type=int, help="people to sync (default 10,000)")
    args = parser.parse_args()
    n = args.n or (3_000 if args.quick else 10_000)
    for line in asyncio.run(run(n)):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
