"""Load generators of `benchmarks/http_route.py`, each in a process of its own.

`wrk` when it is installed: a generated Lua script holds every church's access token, builds
one request per token at start-up, and picks the token of each request by the access pattern
(`one`: the first church; `uniform`; `zipf`: ranks drawn from the Zipf(s) CDF by binary search,
mapped to churches through a seeded permutation, so the hottest church is not the first made);
its `done()` prints one JSON line with the responses, status codes, socket errors and latency
percentiles. Without wrk: an aiohttp client in a spawned process, with the same patterns and the
same report. Latency percentiles cover every response (2xx or not), as wrk's do.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import concurrent.futures
import itertools
import json
import math
import multiprocessing
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .common import percentile

PATTERNS = ("one", "uniform", "zipf")
ZIPF_S = 1.1


@dataclass
class LoadSpec:
    """One load run: where, which tokens, which pattern, how hard and how long."""

    url: str                  # http://127.0.0.1:port/api/v1/members?limit=50
    tokens: list[str]         # one per church; `one` uses the first
    pattern: str
    seed: int
    seconds: int
    threads: int = 2
    connections: int = 32
    timeout_s: int = 2        # wrk's default: slower answers count as timeouts


@dataclass
class LoadResult:
    """What the load generator saw."""

    tool: str
    seconds: float
    codes: dict[int, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float = math.nan
    p99_ms: float = math.nan

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.codes.items() if 200 <= code < 300)

    @property
    def rps(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds else math.nan

    def errors(self) -> dict[str, int]:
        """Non-2xx answers by status and socket errors by kind."""
        out = {f"HTTP {code}": n for code, n in sorted(self.codes.items())
               if not 200 <= code < 300}
        return out | {k: n for k, n in self.socket_errors.items() if n}


def zipf_order(n: int, seed: int) -> list[int]:
    """The church (0-based) of each Zipf rank: a seeded permutation."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def picker(n: int, pattern: str, seed: int) -> Callable[[], int]:
    """A function drawing church indexes by the pattern (the aiohttp client's)."""
    rng = random.Random(seed)
    if pattern == "one":
        return lambda: 0
    if pattern == "uniform":
        return lambda: rng.randrange(n)
    weights = [k ** -ZIPF_S for k in range(1, n + 1)]
    total = sum(weights)
    cdf = list(itertools.accumulate(w / total for w in weights))
    order = zipf_order(n, seed)
    return lambda: order[min(bisect.bisect_left(cdf, rng.random()), n - 1)]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


# --- wrk -------------------------------------------------------------------------------------

WRK_LUA = r"""
local tokens = {%(tokens)s}
local order = {%(order)s}
local pattern = "%(pattern)s"
local path = "%(path)s"
local s = %(s)s
local n = #tokens
local reqs, cdf = {}, {}
codes = {}
local threads, made = {}, 0

function setup(thread)
  made = made + 1
  thread:set("thread_no", made)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tonumber(args[1] or "1") * 97 + (thread_no or 0))
  for i = 1, n do
    reqs[i] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. tokens[i]})
  end
  if pattern == "zipf" then
    local total = 0
    for k = 1, n do total = total + k ^ (-s); cdf[k] = total end
    for k = 1, n do cdf[k] = cdf[k] / total end
  end
end

function request()
  if pattern == "one" then return reqs[1] end
  if pattern == "uniform" then return reqs[math.random(n)] end
  local u, lo, hi = math.random(), 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return reqs[order[lo]]
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged, parts = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes") or {}) do merged[k] = (merged[k] or 0) + v end
  end
  for k, v in pairs(merged) do table.insert(parts, string.format('"%%d":%%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%%d,"requests":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"timeout":%%d,"p50_us":%%d,"p99_us":%%d,"codes":{%%s}}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
"""


def wrk_script(spec: LoadSpec, path: str) -> str:
    """The Lua script for one run."""
    order = zipf_order(len(spec.tokens), spec.seed) if spec.pattern == "zipf" else []
    return WRK_LUA % {
        "tokens": ",".join(f'"{t}"' for t in spec.tokens),
        "order": ",".join(str(i + 1) for i in order),
        "pattern": spec.pattern, "path": path, "s": repr(ZIPF_S),
    }


async def run_wrk(spec: LoadSpec, workdir: Path) -> LoadResult:
    """`wrk -t T -c C -d Ss` with the pattern's script; its JSON line parsed."""
    _, _, rest = spec.url.partition("/api/")
    script = workdir / f"wrk-{spec.pattern}-{spec.seed}-{len(spec.tokens)}.lua"
    script.write_text(wrk_script(spec, "/api/" + rest))
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t", str(spec.threads), "-c", str(spec.connections), "-d", f"{spec.seconds}s",
        "--timeout", f"{spec.timeout_s}s", "-s", str(script), spec.url, "--", str(spec.seed),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), spec.seconds + 60)
    line = next((x for x in out.decode().splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]}"
                           f"{out.decode()[-500:]}")
    doc = json.loads(line[len("WRKJSON "):])
    return LoadResult(
        tool="wrk", seconds=doc["duration_us"] / 1e6,
        codes={int(k): int(v) for k, v in doc["codes"].items()},
        socket_errors={k: int(doc[k]) for k in ("connect", "read", "write", "timeout")},
        p50_ms=doc["p50_us"] / 1000, p99_ms=doc["p99_us"] / 1000)


# --- the aiohttp client (when wrk is not installed) -----------------------------------------

def client_main(spec: LoadSpec) -> LoadResult:
    """Entry point of the client process."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(_client(spec))
    return uvloop.run(_client(spec))


async def _client(spec: LoadSpec) -> LoadResult:
    pick = picker(len(spec.tokens), spec.pattern, spec.seed)
    headers = [{"Authorization": f"Bearer {t}"} for t in spec.tokens]
    latencies: list[float] = []
    codes: collections.Counter[int] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    connector = aiohttp.TCPConnector(limit=spec.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        end = time.monotonic() + spec.seconds

        async def worker() -> None:
            while (t0 := time.monotonic()) < end:
                try:
                    async with http.get(spec.url, headers=headers[pick()]) as resp:
                        await resp.read()
                        codes[resp.status] += 1
                    latencies.append((time.monotonic() - t0) * 1000)
                except TimeoutError:
                    errors["timeout"] += 1
                except aiohttp.ClientConnectorError:
                    errors["connect"] += 1
                except aiohttp.ClientError:
                    errors["read"] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(spec.connections)))
        wall = time.monotonic() - t0
    return LoadResult(tool="aiohttp", seconds=wall, codes=dict(codes), socket_errors=dict(errors),
                      p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99))


class LoadGenerator:
    """Runs load from a process of its own: wrk, or the aiohttp client in a spawned process."""

    def __init__(self, workdir: Path, use_wrk: bool) -> None:
        self.workdir, self.use_wrk = workdir, use_wrk
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def tool(self) -> str:
        return "wrk" if self.use_wrk else "aiohttp client process"

    async def run(self, spec: LoadSpec) -> LoadResult:
        if self.use_wrk:
            return await run_wrk(spec, self.workdir)
        if self.pool is None:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"))
        result: LoadResult = await asyncio.get_running_loop().run_in_executor(
            self.pool, client_main, spec)
        return result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def describe(self, threads: int, connections: int) -> str:
        return (f"{self.tool}, {threads} threads, " if self.use_wrk else
                f"{self.tool}, ") + f"{connections} connections"
