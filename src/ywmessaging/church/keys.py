"""The church package's AppKeys (the app's own are in ywmessaging.keys)."""

from __future__ import annotations

from aiohttp import web

from .export_runner import ExportRunner
from .import_runner import ImportRunner

# The background import jobs of this process; plugins.import_jobs.
IMPORT_RUNNER = web.AppKey("import_runner", ImportRunner)
# The background full-export jobs of this process; plugins.export_jobs.
EXPORT_RUNNER = web.AppKey("export_runner", ExportRunner)
