"""The named-query loader refuses malformed files and parses good ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from ywmessaging.db.queries import QueryError, load, parse_file


def _write(tmp_path: Path, text: str, name: str = "a.sql") -> Path:
    folder = tmp_path / "t" / "queries"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_parses_blocks_kinds_and_params(tmp_path: Path) -> None:
    path = _write(tmp_path, """
-- name: get_x :one
-- Fetch one x.
SELECT * FROM x WHERE id = $1 AND note <> 'a;$9';

-- name: list_x :many
-- All x.
SELECT * FROM x;
""")
    qs = parse_file(path)
    assert [(q.name, q.kind, q.params) for q in qs] == [("get_x", "one", 1), ("list_x", "many", 0)]
    assert qs[0].purpose == "Fetch one x."
    assert not qs[0].sql.endswith(";")


@pytest.mark.parametrize("text, message", [
    ("-- name: a :one\nSELECT 1;", "purpose"),
    ("-- name: a :one\n-- p\n", "no SQL"),
    ("-- name: a :first\n-- p\nSELECT 1;", "malformed"),
    ("SELECT 1;\n-- name: a :one\n-- p\nSELECT 1;", "before the first"),
    ("-- name: a :one\n-- p\nSELECT $1, $3;", "skips a parameter"),
    ("-- name: a :exec\n-- p\nDELETE FROM x; DELETE FROM y;", "more than one statement"),
])
def test_malformed_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_file(_write(tmp_path, text))


def test_duplicate_names_across_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "-- name: a :one\n-- p\nSELECT 1;", "a.sql")
    _write(tmp_path, "-- name: a :one\n-- p\nSELECT 2;", "b.sql")
    with pytest.raises(QueryError, match="already used"):
        load(tmp_path, "t")


def test_wrong_argument_count_is_refused(tmp_path: Path) -> None:
    q = parse_file(_write(tmp_path, "-- name: a :one\n-- p\nSELECT $1::int;"))[0]

    async def call() -> None:
        await q(None, 1, 2)  # type: ignore[arg-type]

    import asyncio

    with pytest.raises(TypeError):
        asyncio.run(call())


def test_repo_query_files_load() -> None:
    from ywmessaging.config import REPO_ROOT

    assert len(load(REPO_ROOT / "sql", "registry")) > 0
    assert len(load(REPO_ROOT / "sql", "tenant")) > 0
