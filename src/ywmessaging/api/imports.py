"""`/api/v1/members/import`, `/api/v1/imports/{id}` and `/api/v1/members/export`: members in
and out as CSV.

The upload is read part by part from the request stream (`multipart/form-data`, field
`file`), never through `request.read()`: the app-wide body limit (YWM_MAX_BODY_BYTES) does
not apply here, YWM_IMPORT_MAX_BYTES does.
"""

from __future__ import annotations

import datetime
import re
from contextlib import aclosing

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..auth.state import principal
from ..church import import_jobs
from ..church.csvio import CHUNK, MissingFile, Upload, export_chunks, spool
from ..church.keys import IMPORT_RUNNER
from ..errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ..tenants.middleware import tenant_conn
from ..time_limits import IMPORT, UNLIMITED, time_limit
from .context import actor_of, entitlement_of, settings_of
from .responses import json_response
from .validation import query_params, uuid_path

MAX_OTHER_PARTS = 64 * 1024
_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+")


class InvalidMultipart(BadRequest):
    code, title = "invalid_multipart", "The body is not valid multipart/form-data"


def _filename(raw: str | None) -> str:
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip()[:255]
    return name or "members.csv"


async def _drain(part: BodyPartReader, budget: int) -> int:
    """Read and drop a part that is not the file; what is left of the budget."""
    while chunk := await part.read_chunk(CHUNK):
        budget -= len(chunk)
        if budget < 0:
            raise PayloadTooLarge("the form's other fields are too large")
    return budget


async def read_upload(request: web.Request, max_bytes: int) -> tuple[Upload, str]:
    """The `file` part, spooled and checked (400/413/415/422 before anything is written)."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the CSV as multipart/form-data, field `file`")
    if request.content_length is not None and request.content_length > max_bytes + CHUNK:
        raise PayloadTooLarge(f"the file is larger than {max_bytes} bytes", limit=max_bytes)
    upload: Upload | None = None
    budget = MAX_OTHER_PARTS
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidMultipart("nested multipart bodies are not accepted")
            if part.name == "file" and upload is None:
                upload = await spool(part, max_bytes=max_bytes)
                filename = _filename(part.filename)
            else:
                budget = await _drain(part, budget)
    except (ValueError, AssertionError, LookupError, HttpProcessingError) as exc:
        if upload is not None:
            upload.close()
        raise InvalidMultipart("the multipart body is malformed") from exc
    except BaseException:
        if upload is not None:
            upload.close()
        raise
    if upload is None:
        raise MissingFile("the form has no `file` field")
    return upload, filename


@time_limit(IMPORT)
async def import_members(request: web.Request) -> web.Response:
    """Import members from CSV: 200 with the report, or 202 with a job to poll when large."""
    settings = settings_of(request)
    upload, filename = await read_upload(request, settings.import_max_bytes)
    try:
        started = await import_jobs.start(tenant_conn(request), settings, actor_of(request),
                                          await entitlement_of(request), upload, filename)
    finally:
        upload.close()
    body = {**started.job, "ignored_columns": started.ignored_columns}
    if started.done:
        return json_response(body)
    request.config_dict[IMPORT_RUNNER].start(principal(request).tenant_id, started.job["id"])
    return json_response(body, status=202,
                         headers={"Location": f"/api/v1/imports/{started.job['id']}"})


async def get_import(request: web.Request) -> web.Response:
    """An import's progress and report (a stalled job is resumed here)."""
    import_id = uuid_path(request, "id")
    job = await import_jobs.get(tenant_conn(request), settings_of(request), import_id)
    request.config_dict[IMPORT_RUNNER].resume_if_abandoned(principal(request).tenant_id, job)
    return json_response(job)


@time_limit(UNLIMITED)   # streamed: the answer has begun long before the last row
async def export_members(request: web.Request) -> web.StreamResponse:
    """Every member as CSV, streamed page by page."""
    query_params(request)
    conn, settings = tenant_conn(request), settings_of(request)
    await import_jobs.record_export(conn, settings, actor_of(request))
    today = datetime.date.today().isoformat()
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="members-{today}.csv"'})
    await response.prepare(request)
    async with aclosing(export_chunks(conn, settings)) as chunks:
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response
