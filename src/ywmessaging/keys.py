"""Every `web.AppKey` and `web.RequestKey` of the service, in one place."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .config import Settings
from .contract import Contract
from .db.queries import QuerySet
from .observability.metrics import Metrics

# --- application state (set in create_app or in a cleanup context, read via config_dict) ---
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
# Set by on_shutdown: /readyz answers 503 while in-flight requests finish.
DRAINING = web.AppKey("draining", asyncio.Event)
# asyncpg.Pool; asyncpg ships no type information, hence Any.
REGISTRY_POOL: web.AppKey[Any] = web.AppKey("registry_pool")
REGISTRY_QUERIES = web.AppKey("registry_queries", QuerySet)
TENANT_QUERIES = web.AppKey("tenant_queries", QuerySet)
# The registry schema version this code needs (the highest registry migration number).
REGISTRY_SCHEMA_VERSION = web.AppKey("registry_schema_version", int)
# openapi.yaml compiled: the request shapes every handler checks against.
CONTRACT = web.AppKey("contract", Contract)
# The mounted `/api/v1` sub-application (routes.build_api_v1), for tests that list its routes.
API_V1 = web.AppKey("api_v1", web.Application)

# --- request state ---
REQUEST_ID = web.RequestKey("request_id", str)
