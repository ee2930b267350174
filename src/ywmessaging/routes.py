"""The route table: root operational routes and the `/api/v1` sub-application."""

from __future__ import annotations

from aiohttp import web

from .api import health
from .config import Settings


def setup_root(app: web.Application) -> None:
    """Operational routes served at the root, outside `/api/v1` and its auth."""
    app.router.add_get("/healthz", health.healthz, name="healthz")
    app.router.add_get("/readyz", health.readyz, name="readyz")
    app.router.add_get("/metrics", health.metrics, name="metrics")
    app.router.add_get("/openapi.yaml", health.openapi, name="openapi")


def build_api_v1(settings: Settings) -> web.Application:
    """The `/api/v1` sub-application, complete before it is mounted (mounting freezes it).

    Plug-in points, in this order:
    - middlewares: `api.middlewares.extend([auth, tenant_lease])` (JWT, then tenant lease);
    - routes: one `api.router.add_routes(<domain>.routes)` per domain module in `api/`;
    - resources only the API needs: `api.cleanup_ctx.append(...)`.
    """
    api = web.Application()
    return api
