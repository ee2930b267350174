"""Live events across two service processes: from a webhook's arrival to the browser's event.

Two `python -m ywmessaging serve` processes share a throwaway registry. N churches (provisioned
directly, each with a number routed to it) have S sockets each on `/api/v1/events`, half on
each process (1,000 sockets in all by default). Signed inbound SMS webhooks are posted to the
first process at a steady rate; it stores, answers, applies and publishes them; both
processes' listeners hear the notification and send the event to the church's sockets. The
latency of a delivery is from just before the webhook's POST to the frame's arrival at a
socket, split by the process the socket is on (the second one is the cross-process path).

Memory per connection: each server's RSS after its sockets connected minus before, divided by
its sockets. Baselines in the same run: the webhook's own HTTP answer (store and acknowledge)
and a bare PostgreSQL NOTIFY → LISTEN round trip on the same server.

    .venv/bin/python -m benchmarks.live_events [--quick] [--churches N] [--per-church S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ywmessaging.auth.tokens import Keyring, Tokens
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.messaging import signature
from ywmessaging.sqlq import registry as rq

from .common import Deployment, deployment, percentile, progress, target_line

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
GOAL_P99_MS = 100.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _serve(dep: Deployment, port: int, public_key: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "DATABASE_URL": dep.settings.require_database_url(),
           "YWM_SECRET_KEY": dep.settings.require_secret_key(),
           "YWM_DB_PREFIX": dep.settings.db_prefix, "YWM_LOG_LEVEL": "warning",
           "TELNYX_PUBLIC_KEY": public_key,
           "YWM_BILLING_CATALOGUE": str(dep.settings.billing_catalogue)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", "serve", "--port", str(port), env=env,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError("the server exited early")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            await asyncio.sleep(0.2)
    raise RuntimeError("the server never became ready")


async def _notify_baseline(dep: Deployment, n: int) -> list[float]:
    """Bare NOTIFY → LISTEN round trips on the registry (ms)."""
    target = PgTarget.parse(dep.settings.require_database_url())
    listener, sender = await pg.connect(target), await pg.connect(target)
    got: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("ywmb_bench", lambda *_a: got.put_nowait(time.perf_counter()))
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            await sender.execute("SELECT pg_notify('ywmb_bench', 'x')")
            out.append((await asyncio.wait_for(got.get(), 5) - t0) * 1000)
    finally:
        await listener.close()
        await sender.close()
    return out


class Clients:
    """The sockets, and every delivery's latency by the process the socket is on."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.latency: dict[int, list[float]] = defaultdict(list)
        self.lost_frames = 0
        self.expected = 0
        self.all_arrived = asyncio.Event()

    async def read(self, ws: Any, proc: int) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.perf_counter()
            event = orjson.loads(msg.data)
            tag = event["data"].get("body", "")
            t0 = self.sent_at.get(tag)
            if t0 is None:
                self.lost_frames += 1
            else:
                self.latency[proc].append((now - t0) * 1000)
                if sum(map(len, self.latency.values())) >= self.expected > 0:
                    self.all_arrived.set()


async def run(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    key = signature.private_key(signature.generate_seed())
    async with deployment() as dep:
        progress(f"provisioning {args.churches} churches")
        churches = []
        for i in range(args.churches):
            t = await dep.provisioner.provision(f"Events bench {i}")
            number = f"+1555{700 + i // 1000:03d}{i % 1000:04d}"
            await dep.registry.execute(
                "INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)", number, t.id)
            churches.append((t.id, number))
        ports = [_free_port(), _free_port()]
        procs = [await _serve(dep, p, signature.public_key_b64(key)) for p in ports]
        try:
            await _measure(args, dep, key, churches, ports, procs)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 30)


async def _measure(args: argparse.Namespace, dep: Deployment, key: Any,
                   churches: list[tuple[uuid.UUID, str]], ports: list[int],
                   procs: list[Any]) -> None:
    tokens = Tokens(dep.settings, Keyring.from_settings(dep.settings))
    clients = Clients()
    rss_before = [_rss_kib(p.pid) for p in procs]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        progress(f"connecting {len(churches) * args.per_church} sockets over two processes")
        readers, sockets = [], []
        for tenant_id, _number in churches:
            token, _ = tokens.issue_access(admin_id=uuid.uuid4(), tenant_id=tenant_id,
                                           role="owner", session_id=uuid.uuid4(),
                                           valid_after_us=0)
            for s in range(args.per_church):
                proc = s % 2
                ws = await http.ws_connect(f"http://127.0.0.1:{ports[proc]}/api/v1/events",
                                           headers={"Authorization": f"Bearer {token}"})
                sockets.append(ws)
                readers.append(asyncio.create_task(clients.read(ws, proc)))
        await asyncio.sleep(1.0)
        rss_after = [_rss_kib(p.pid) for p in procs]
        per_conn = [(a - b) / (len(sockets) / 2) for a, b in zip(rss_after, rss_before,
                                                                  strict=True)]
        progress(f"posting {args.rate}/s inbound webhooks to process 1 for {args.seconds} s")
        answers: list[float] = []
        url = f"http://127.0.0.1:{ports[0]}/webhooks/telnyx"

        async def post(k: int) -> None:
            number = churches[k % len(churches)][1]
            tag = f"bench-{k}"
            body = orjson.dumps({"data": {
                "record_type": "event", "id": str(uuid.uuid4()), "event_type": "message.received",
                "occurred_at": "2026-12-04T12:00:00.000+00:00", "payload": {
                    "id": str(uuid.uuid4()), "from": {"phone_number": "+15559990000"},
                    "to": [{"phone_number": number}], "text": tag}}})
            headers = {"Content-Type": "application/json", **signature.signed_headers(key, body)}
            clients.sent_at[tag] = t0 = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 200, resp.status
            answers.append((time.perf_counter() - t0) * 1000)

        # warm-up: one webhook per church (its tenant pool opens, its listener path is hot)
        await asyncio.gather(*(post(-1 - i) for i in range(len(churches))))
        await asyncio.sleep(2.0)
        clients.latency.clear()
        answers.clear()
        posts = []
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        for k in range(total):
            await asyncio.sleep(max(0.0, start + k / args.rate - time.perf_counter()))
            posts.append(asyncio.create_task(post(k)))
        await asyncio.gather(*posts)
        expected = clients.expected = total * args.per_church
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clients.all_arrived.wait(), 10)
        webhook_latency = dict(clients.latency)
        progress(f"publishing {args.rate}/s events straight through the registry")
        clients.latency = defaultdict(list)
        clients.all_arrived.clear()
        q = rq(dep.settings.sql_dir)

        async def publish(k: int) -> None:
            tenant_id = churches[k % len(churches)][0]
            tag = f"direct-{k}"
            clients.sent_at[tag] = time.perf_counter()
            await q.publish_event(dep.registry, tenant_id, "message.received",
                                  datetime.now(UTC), orjson.dumps({"body": tag}).decode())

        start = time.perf_counter()
        pubs = []
        for k in range(total):
            await asyncio.sleep(max(0.0, start + k / args.rate - time.perf_counter()))
            pubs.append(asyncio.create_task(publish(k)))
        await asyncio.gather(*pubs)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clients.all_arrived.wait(), 10)
        direct = clients.latency
        clients.latency = defaultdict(list, webhook_latency)
        for ws in sockets:
            await ws.close()
        for r in readers:
            r.cancel()
    _report(args, clients, answers, per_conn, expected, await _notify_baseline(dep, 200),
            direct[0] + direct[1])


def _report(args: argparse.Namespace, clients: Clients, answers: list[float],
            per_conn: list[float], expected: int, notify: list[float],
            direct: list[float]) -> None:
    every = clients.latency[0] + clients.latency[1]
    sockets = args.churches * args.per_church
    print(f"sockets {sockets} ({args.churches} churches x {args.per_church}), "
          f"{int(args.rate * args.seconds)} webhooks at {args.rate}/s, deliveries "
          f"{len(every)}/{expected}")
    for label, values in (("same process", clients.latency[0]),
                          ("other process", clients.latency[1]), ("all", every),
                          ("publish -> socket (no webhook)", direct),
                          ("baseline: webhook answer", answers),
                          ("baseline: bare NOTIFY->LISTEN", notify)):
        print(f"{label:32s} p50 {percentile(values, 50):7.2f} ms  p99 "
              f"{percentile(values, 99):7.2f} ms  max {max(values, default=0):7.2f} ms")
    print(f"memory per connection: process 1 {per_conn[0]:.1f} KiB, "
          f"process 2 {per_conn[1]:.1f} KiB (RSS delta / sockets)")
    p99 = percentile(every, 99)
    print(f"ratio p99 event / p99 webhook answer: {p99 / percentile(answers, 99):.2f}")
    print(target_line(f"events_webhook_to_socket_p99_ms_{sockets}", p99, GOAL_P99_MS))
    print(target_line("events_deliveries_lost",
                      float(2 * expected - len(every) - len(direct)), 0.0))
    print(target_line("events_memory_per_connection_kib", max(per_conn), 64.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 sockets, 5 s")
    parser.add_argument("--churches", type=int)
    parser.add_argument("--per-church", type=int)
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args()
    args.churches = args.churches or (10 if args.quick else 20)
    args.per_church = args.per_church or (20 if args.quick else 50)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
