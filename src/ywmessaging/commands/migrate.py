"""`ywm migrate`: registry, then each server's template, then every tenant (ops/fanout.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any, TextIO

from tqdm import tqdm

from ..config import Settings
from ..ops.doctor import Plan, plan
from ..ops.fanout import MigrateOptions, RunReport, TenantResult, migrate


class Progress:
    """A tqdm bar when the stream is a terminal; otherwise a plain line at most every
    `interval` seconds or every 10 %, and always the last one."""

    def __init__(self, stream: TextIO, interval: float = 2.0) -> None:
        self.stream = stream
        self.interval = interval
        self.bar: Any = None
        self.run_id: int | None = None
        self.total = self.done = 0
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        self._last_time = 0.0
        self._last_tenth = 0

    def started(self, run_id: int, total: int) -> None:
        """A run began with `total` tenants."""
        self.run_id, self.total = run_id, total
        self._last_time = time.monotonic()
        if self.stream.isatty():
            self.bar = tqdm(total=total, file=self.stream, unit="tenant",
                            desc=f"migrate run {run_id}", dynamic_ncols=True)

    def finished_one(self, result: TenantResult) -> None:
        """One tenant ended."""
        self.done += 1
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix(ok=self.counts["ok"], failed=self.counts["failed"],
                                 refresh=False)
            self.bar.update(1)
            return
        now, tenth = time.monotonic(), self.done * 10 // max(self.total, 1)
        if self.done == self.total or tenth > self._last_tenth or \
                now - self._last_time >= self.interval:
            self._last_time, self._last_tenth = now, tenth
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """`migrate: 12/200 ok=11 failed=1` (and skipped=N when some were)."""
        text = (f"migrate: {self.done}/{self.total} ok={self.counts['ok']} "
                f"failed={self.counts['failed']}")
        return text + (f" skipped={self.counts['skipped']}" if self.counts["skipped"] else "")

    def close(self) -> None:
        """Close the bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def options_from(args: argparse.Namespace, settings: Settings) -> MigrateOptions:
    """The run's options from the command line, defaults from settings."""
    return MigrateOptions(
        concurrency=args.concurrency or settings.migrate_concurrency,
        tenant_ids=tuple(args.tenants), resume=args.resume, retry_failed=args.retry_failed,
    )


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate (or with --dry-run, show what would be migrated); 1 if any tenant failed."""
    options = options_from(args, settings)
    if args.dry_run:
        print_plan(await plan(settings, options))
        return 0
    progress = Progress(sys.stderr)
    t0 = time.perf_counter()
    try:
        report = await migrate(settings, options, progress)
    except (asyncio.CancelledError, KeyboardInterrupt):
        progress.close()
        if progress.run_id is not None:
            print(f"migrate: run {progress.run_id} interrupted; continue it with "
                  f"`ywm migrate --resume {progress.run_id}`", file=sys.stderr)
        raise
    finally:
        progress.close()
    print_summary(report, time.perf_counter() - t0, options)
    failed = [r for r in report.results if r.status == "failed"]
    if failed:
        # the one line an operator's terminal or cron mail shows; details are on stdout
        print(f"ywm: migrate run {report.run_id}: {len(failed)} of {len(report.results)} "
              f"tenant(s) failed; first: {failed[0].error}", file=sys.stderr)
    return 1 if failed else 0


def print_summary(report: RunReport, seconds: float, options: MigrateOptions) -> None:
    """Registry, templates, counts, every failed tenant with its error, and the next step."""
    reg = report.registry
    print(f"registry: version {reg.registry_to}" + (
        f" (migrated from {reg.registry_from})" if reg.registry_from != reg.registry_to else ""))
    for server, note in report.templates.items():
        print(f"server {server}: {note}")
    if report.run_id is None:
        print("nothing to retry" if options.retry_failed or options.resume is not None
              else "no tenants to migrate")
        return
    print(f"run {report.run_id} {report.status} in {seconds:.1f} s: {len(report.results)} "
          f"tenant(s), {report.count('ok')} ok, {report.count('failed')} failed, "
          f"{report.count('skipped')} skipped; code version {report.target_version}")
    failed = [r for r in report.results if r.status != "ok"]
    if failed:
        print("not migrated:")
    for r in sorted(failed, key=lambda r: (r.server, str(r.tenant_id))):
        version = r.from_version if r.to_version is None else r.to_version
        where = "at an unknown version" if version is None else f"at version {version}"
        print(f"  {r.tenant_id} ({r.name}, server {r.server}, {r.status}, {where}): {r.error}")
    if report.count("failed"):
        print(f"hint: fix the cause, then `ywm migrate --retry-failed` "
              f"(retries the failed tenants of run {report.run_id})")


def print_plan(p: Plan) -> None:
    """The dry run, one line per database."""
    print("dry run: nothing is changed")
    if p.registry_version is None:
        print("registry: the database does not exist yet; `ywm migrate` would create it and "
              f"apply {', '.join(p.registry_pending)}")
        return
    if p.registry_pending:
        print(f"registry: BEHIND at version {p.registry_version}; `ywm migrate` would first "
              f"apply {', '.join(p.registry_pending)}")
    else:
        print(f"registry: up to date at version {p.registry_version}")
    for server, version, pending in p.templates:
        print(f"template on {server}: " + _state(version, pending))
    for e in p.entries:
        state = _state(e.version, e.pending) if e.error is None else f"unreadable: {e.error}"
        print(f"tenant {e.tenant_id} ({e.name}) on {e.server}: {state}")
    behind = sum(1 for e in p.entries if e.pending)
    bad = sum(1 for e in p.entries if e.error)
    print(f"{len(p.entries)} tenant(s): {behind} to migrate, "
          f"{len(p.entries) - behind - bad} up to date, {bad} unreadable")


def _state(version: int | None, pending: list[str]) -> str:
    if not pending:
        return f"up to date at version {version}"
    return f"at version {version}, would apply {', '.join(pending)}"


def _concurrency(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _tenant_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a tenant id (a UUID): {raw!r}") from None


def register(sub: Any) -> None:
    """Add `ywm migrate`."""
    p = sub.add_parser(
        "migrate", help="apply migrations: registry, each server's template, then every tenant",
        description="Apply migrations to the registry, each server's template, then every "
                    "tenant database; one result row per tenant in migration_results.",
    )
    p.add_argument("--concurrency", type=_concurrency, default=None, metavar="N",
                   help="tenants migrated at once per database server "
                        "(default: YWM_MIGRATE_CONCURRENCY)")
    p.add_argument("--tenant", dest="tenants", action="append", type=_tenant_id, default=[],
                   metavar="ID", help="only this tenant (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="list each database's version and pending migrations; change nothing")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--resume", type=int, metavar="RUN",
                       help="continue run RUN: only its tenants not yet ok")
    which.add_argument("--retry-failed", action="store_true",
                       help="only the tenants that failed in the latest run")
    p.set_defaults(func=run)
