"""The two named-query sets, loaded once per process (fails at import of a broken file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .db.queries import QuerySet, load


@lru_cache(maxsize=8)
def queries(sql_dir: Path, tree: str) -> QuerySet:
    """The named queries of `tree` under `sql_dir`, parsed once."""
    return load(sql_dir, tree)


def registry(sql_dir: Path) -> QuerySet:
    """Registry queries."""
    return queries(sql_dir, "registry")


def tenant(sql_dir: Path) -> QuerySet:
    """Tenant queries."""
    return queries(sql_dir, "tenant")
