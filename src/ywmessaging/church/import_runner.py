"""The runner of background import jobs (a JobRunner; started and stopped by the
`import_jobs` cleanup context in plugins.py)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from ..billing.state import entitlement
from ..config import Settings
from ..events.publisher import Publisher
from . import import_jobs
from .job_runner import JobRunner


class ImportRunner(JobRunner):
    """The background import jobs of this process.

    A job cancelled at shutdown stays `running` in its row and is resumed (by whichever
    process is asked about it first) once it has been idle for import_jobs.STALE_S.
    """

    kind = "import"

    def __init__(self, settings: Settings, supervisor: Any, registry_pool: Any) -> None:
        super().__init__(settings, supervisor, registry_pool)
        self.events = Publisher(registry_pool, settings)   # progress to the live events

    def resume_if_abandoned(self, tenant_id: uuid.UUID, job: dict[str, Any]) -> None:
        """Start a job nobody seems to run (queued, or running without progress)."""
        if self.running(tenant_id, job["id"]):
            return
        age = (datetime.datetime.now(datetime.UTC) - job["updated_at"]).total_seconds()
        if import_jobs.resumable(job, age):
            self.start(tenant_id, job["id"])

    async def run(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        """Import one stored job under the church's current plan."""
        ent = await entitlement(self._registry, self.settings, tenant_id,
                                datetime.datetime.now(datetime.UTC))
        await import_jobs.run_job(
            lambda: self.lease(tenant_id), self.settings, ent, job_id,
            lambda event_type, data: self.events.emit(tenant_id, event_type, data))
