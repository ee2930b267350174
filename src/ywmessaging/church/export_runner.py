"""The runner of full export jobs (a JobRunner; started and stopped by the `export_jobs`
cleanup context in plugins.py). A job cancelled at shutdown is marked failed (a ZIP cannot
be resumed); one whose process died is failed by the next start after exports.STALE_S."""

from __future__ import annotations

import uuid

from . import export_writer
from .job_runner import JobRunner


class ExportRunner(JobRunner):
    """The background export jobs of this process."""

    kind = "export"
    while_suspended = True

    async def run(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        """Write one queued export."""
        await export_writer.run_job(lambda: self.lease(tenant_id), self.settings, tenant_id,
                                    job_id)
