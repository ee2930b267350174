"""Process health, readiness (registry only), the metrics scrape and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..config import REPO_ROOT
from ..db import migrations
from ..db.faults import is_connection_error
from ..errors import ServiceUnavailable
from ..keys import DRAINING, METRICS, REGISTRY_POOL, REGISTRY_SCHEMA_VERSION
from .responses import json_response

READY_TIMEOUT = 2.0
READY_RETRY_S = 2
OPENAPI_PATH = REPO_ROOT / "openapi.yaml"


class NotReady(ServiceUnavailable):
    code, title = "not_ready", "Not ready to serve traffic"


async def readiness(pool: Any, needed: int, draining: bool) -> tuple[dict[str, str], str | None]:
    """Each check's state (`ok` or why not) and, if any failed, a one-line summary."""
    checks = {"registry": "ok", "schema": "ok", "draining": "draining" if draining else "ok"}
    problems = ["the process is shutting down"] if draining else []
    try:
        async with asyncio.timeout(READY_TIMEOUT), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            have = await migrations.registry_schema_version(conn)
    except TimeoutError:
        checks.update(registry="timeout", schema="unknown")
        problems.append(f"the registry did not answer within {READY_TIMEOUT:g} s")
    except Exception as exc:  # whatever broke, the answer is "not ready" (503)
        # A restart can surface as InternalClientError or a closed-connection InterfaceError,
        # which belong to no common base: readiness must never answer 500.
        checks.update(registry="unreachable" if is_connection_error(exc) else "error",
                      schema="unknown")
        problems.append("the registry cannot be reached" if is_connection_error(exc)
                        else f"the registry check failed ({type(exc).__name__})")
    else:
        # A newer schema is fine: migrations expand first, so the previous release still runs.
        if have < needed:
            checks["schema"] = "outdated"
            problems.append(f"registry schema is at {have}, this code needs {needed}")
    return checks, "; ".join(problems) or None


async def healthz(request: web.Request) -> web.Response:
    """The process is up (no database involved)."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the registry answers, its schema is current and the process is not draining."""
    app = request.config_dict
    checks, summary = await readiness(
        app[REGISTRY_POOL], app[REGISTRY_SCHEMA_VERSION], app[DRAINING].is_set()
    )
    if summary is not None:
        raise NotReady(summary, checks=checks, headers={"Retry-After": str(READY_RETRY_S)})
    return json_response({"status": "ready", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of this process's metrics."""
    body, content_type = request.config_dict[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    """The hand-written API contract."""
    body = await asyncio.to_thread(OPENAPI_PATH.read_bytes)
    return web.Response(body=body, content_type="application/yaml")
