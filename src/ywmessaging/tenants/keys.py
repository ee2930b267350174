"""AppKeys and RequestKeys of the tenant pool supervisor (the app's own are in ywmessaging.keys)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .runtime import SupervisorRuntime

# The running supervisor of this process (set by the cleanup context in plugins.py).
SUPERVISOR: web.AppKey[SupervisorRuntime] = web.AppKey("tenant_supervisor")
# The tenant a request acts for; set by authentication (the JWT's `tid`) before the lease
# middleware runs. Requests without it get no lease.
TENANT_ID = web.RequestKey("tenant_id", uuid.UUID)
# The leased asyncpg connection (asyncpg ships no types); read it with `tenant_conn(request)`.
TENANT_CONN: web.RequestKey[Any] = web.RequestKey("tenant_conn")
