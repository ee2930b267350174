"""`/api/v1/account/export` and `/api/v1/account/exports[/{id}]`: the church's full export
(owner only), started as a background job, listed, and downloaded as a ZIP file."""

from __future__ import annotations

from aiohttp import web

from ..auth.state import principal
from ..church import exports
from ..church.keys import EXPORT_RUNNER
from ..tenants.middleware import tenant_conn
from ..time_limits import UNLIMITED, time_limit
from .context import actor_of, settings_of
from .responses import json_response
from .validation import query_params, uuid_path


async def start_export(request: web.Request) -> web.Response:
    """Queue a full export and start it: 202 with the job (409 while one is running)."""
    query_params(request)
    job = await exports.start(tenant_conn(request), settings_of(request), actor_of(request))
    request.config_dict[EXPORT_RUNNER].start(principal(request).tenant_id, job["id"])
    return json_response(job, status=202,
                         headers={"Location": f"/api/v1/account/exports/{job['id']}"})


async def list_exports(request: web.Request) -> web.Response:
    """The church's exports, newest first, with their progress."""
    query_params(request)
    items = await exports.list_exports(tenant_conn(request), settings_of(request))
    return json_response({"items": items})


@time_limit(UNLIMITED)   # the file is sent after the handler returns, at the client's pace
async def download_export(request: web.Request) -> web.StreamResponse:
    """A finished export's ZIP (404 unknown, 409 not finished, 410 expired)."""
    query_params(request)
    export_id = uuid_path(request, "id")
    path, job = await exports.download(tenant_conn(request), settings_of(request),
                                       principal(request).tenant_id, export_id)
    day = job["created_at"].date().isoformat()
    return web.FileResponse(path, headers={
        "Content-Type": "application/zip", "Cache-Control": "no-store",
        "Content-Disposition":
            f'attachment; filename="ywmessaging-export-{day}-{job["id"][:8]}.zip"'})
