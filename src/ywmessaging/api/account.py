"""`/api/v1/account/export` and `/api/v1/account/exports[/{id}]`: the church's full export
(owner only), started as a background job, listed, and downloaded as a ZIP file.
`/api/v1/account/deletion`: the church's scheduled deletion (owner only), shown, scheduled with
the password (and MFA code) again, and cancelled."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth import account_deletion
from ..auth.state import client, principal, registry_pool, services
from ..church import exports
from ..church.keys import EXPORT_RUNNER
from ..tenants import lifecycle
from ..tenants.middleware import tenant_conn
from ..time_limits import UNLIMITED, time_limit
from ..values import secret
from .context import actor_of, settings_of, utc_now
from .responses import json_response
from .validation import fields, json_body, query_params, uuid_path


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


def deletion_json(row: Any) -> dict[str, Any]:
    """The church's deletion state as the API shows it."""
    due = row["deletion_due_at"]
    return {"scheduled": due is not None, "due_at": due.isoformat() if due else None,
            "status": row["status"]}


async def get_deletion(request: web.Request) -> web.Response:
    """Whether the church's deletion is scheduled, and when."""
    query_params(request)
    row = await lifecycle.deletion(registry_pool(request), settings_of(request),
                                   principal(request).tenant_id)
    return json_response(deletion_json(row))


async def schedule_deletion(request: web.Request) -> web.Response:
    """Schedule the deletion in 30 days (password, and MFA code when on): 202; every admin
    is emailed."""
    data = fields(await json_body(request), required={"password": secret()},
                  optional={"code": secret(32)})
    row = await account_deletion.schedule(tenant_conn(request), services(request),
                                 registry_pool(request), principal(request),
                                 password=data["password"], code=data["code"],
                                 client=client(request), now=utc_now())
    return json_response(deletion_json(row), status=202)


async def cancel_deletion(request: web.Request) -> web.Response:
    """Cancel the scheduled deletion: 204 (404 `deletion_not_scheduled`)."""
    query_params(request)
    await account_deletion.cancel(tenant_conn(request), services(request), registry_pool(request),
                         principal(request), client=client(request))
    return web.Response(status=204)
