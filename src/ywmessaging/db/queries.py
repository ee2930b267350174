"""Named SQL queries loaded from `sql/<tree>/queries/*.sql` and validated at boot.

A file holds blocks like::

    -- name: get_tenant :one
    -- Fetch one tenant by id.
    SELECT ... WHERE id = $1;

Kinds: `:one` (a row or None), `:many` (a list of rows), `:val` (the first column of the first
row), `:exec` (the status string). The purpose line (the first comment after the name) is
required; parameters are `$n`, numbered from 1 without gaps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s+:(one|many|val|exec)\s*$")
_PARAM_RE = re.compile(r"\$(\d+)")
KINDS = ("one", "many", "val", "exec")


class QueryError(Exception):
    """A query file that cannot be loaded (stops the boot)."""


class Executor(Protocol):
    """What asyncpg connections and pools both offer."""

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...


@dataclass(frozen=True)
class Query:
    """One named statement."""

    name: str
    kind: str
    sql: str
    purpose: str
    source: str
    params: int

    async def __call__(self, conn: Executor, *args: Any, timeout: float | None = None) -> Any:
        """Run the statement on `conn` as its kind says."""
        if len(args) != self.params:
            raise TypeError(f"query {self.name} takes {self.params} parameters, got {len(args)}")
        if self.kind == "one":
            return await conn.fetchrow(self.sql, *args, timeout=timeout)
        if self.kind == "many":
            return await conn.fetch(self.sql, *args, timeout=timeout)
        if self.kind == "val":
            return await conn.fetchval(self.sql, *args, timeout=timeout)
        return await conn.execute(self.sql, *args, timeout=timeout)


class QuerySet:
    """All named queries of one tree (`registry` or `tenant`), by attribute or by name."""

    def __init__(self, tree: str, queries: dict[str, Query]) -> None:
        self.tree = tree
        self._queries = queries

    def __getattr__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"no {self.tree} query named {name!r}") from None

    def __iter__(self) -> Iterator[Query]:
        return iter(self._queries.values())

    def __len__(self) -> int:
        return len(self._queries)

    def __contains__(self, name: object) -> bool:
        return name in self._queries


def parse_file(path: Path) -> list[Query]:
    """Split one .sql file into named queries, checking each block's form."""
    text = path.read_text(encoding="utf-8")
    out: list[Query] = []
    current: dict[str, Any] | None = None
    body: list[str] = []

    def finish() -> None:
        if current is None:
            return
        out.append(_build(current, body, path))

    for lineno, line in enumerate(text.splitlines(), 1):
        m = _NAME_RE.match(line.strip())
        if m:
            finish()
            current = {"name": m.group(1), "kind": m.group(2), "line": lineno, "purpose": None}
            body = []
            continue
        if line.strip().startswith("-- name:"):
            raise QueryError(f"{path}:{lineno}: malformed name line (want `-- name: x :one`)")
        if current is None:
            if line.strip() and not line.strip().startswith("--"):
                raise QueryError(f"{path}:{lineno}: SQL before the first `-- name:` line")
            continue
        if current["purpose"] is None and not body and line.strip().startswith("--"):
            current["purpose"] = line.strip()[2:].strip()
            continue
        body.append(line)
    finish()
    return out


def _build(meta: dict[str, Any], body: list[str], path: Path) -> Query:
    where = f"{path.name}:{meta['line']}"
    sql = "\n".join(body).strip()
    if sql.endswith(";"):
        sql = sql[:-1].rstrip()
    if not sql:
        raise QueryError(f"{where}: query {meta['name']} has no SQL")
    if not meta["purpose"]:
        raise QueryError(f"{where}: query {meta['name']} needs a purpose line after its name")
    if ";" in _strip_literals(sql):
        raise QueryError(f"{where}: query {meta['name']} holds more than one statement")
    numbers = {int(n) for n in _PARAM_RE.findall(_strip_literals(sql))}
    if numbers and numbers != set(range(1, max(numbers) + 1)):
        raise QueryError(f"{where}: query {meta['name']} skips a parameter number")
    return Query(
        name=meta["name"], kind=meta["kind"], sql=sql, purpose=meta["purpose"],
        source=where, params=max(numbers) if numbers else 0,
    )


def _strip_literals(sql: str) -> str:
    """SQL without string literals and comments (for counting `$n` and `;`)."""
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return re.sub(r"--[^\n]*", "", sql)


def load(sql_dir: Path, tree: str) -> QuerySet:
    """Load every `sql_dir/<tree>/queries/*.sql`; duplicate names stop the boot."""
    folder = sql_dir / tree / "queries"
    if not folder.is_dir():
        raise QueryError(f"no query folder at {folder}")
    queries: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        for q in parse_file(path):
            if q.name in queries:
                raise QueryError(
                    f"{q.source}: query name {q.name} already used at {queries[q.name].source}"
                )
            queries[q.name] = q
    return QuerySet(tree, queries)
