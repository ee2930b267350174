"""Members CSV in and out: an upload spooled to a temporary file and checked before anything is
written, its records read back with their line numbers, and export cells made safe for
spreadsheets.

The upload is never held whole in memory: it goes to a `SpooledTemporaryFile` (memory up to
1 MiB, then disk) while its size, UTF-8 encoding and line count are checked. Records are then
read one physical line at a time with a length cap, so a 10 MB line costs neither memory nor a
crash: it becomes one `line_too_long` row error.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from ..config import Settings
from ..errors import BadRequest, PayloadTooLarge, ValidationFailed
from ..sqlq import tenant as tq
from ..values import E164

MAX_LINE = 64 * 1024      # bytes in one physical line; longer lines are row errors
CHUNK = 64 * 1024
SPOOL_MEMORY = 1 << 20    # an upload stays in memory up to this size, then moves to disk
MAX_ROWS = 100_000        # data lines after the header
FORMULA_START = frozenset("=+-@\t\r")
_DELIMITERS = (",", ";", "\t")
EXPORT_COLUMNS = ("first_name", "last_name", "phone", "email", "opt_in", "branch", "groups",
                  "notes", "created_at")
EXPORT_PAGE = 2000



class InvalidEncoding(BadRequest):
    code, title = "invalid_encoding", "The file is not UTF-8 text"


class EmptyFile(BadRequest):
    code, title = "empty_file", "The file has no header line"


class MissingFile(BadRequest):
    code, title = "missing_file", "Send the CSV as the multipart field `file`"


class TooManyRows(ValidationFailed):
    code, title = "too_many_rows", "The file has more rows than one import takes"


class PartReader(Protocol):
    """What aiohttp's multipart BodyPartReader offers (for the type checker)."""

    async def read_chunk(self, size: int = ...) -> bytes: ...


@dataclass
class Upload:
    """A spooled, checked upload: UTF-8 throughout, within the size and row caps."""

    file: IO[bytes]
    size: int
    data_lines: int  # non-empty physical lines after the header (records may span lines)

    def close(self) -> None:
        """Drop the temporary file."""
        self.file.close()


@dataclass
class _LineCounter:
    """Counts non-empty physical lines across chunk boundaries."""

    lines: int = 0
    open_line: bool = False

    def feed(self, chunk: bytes) -> None:
        parts = chunk.split(b"\n")
        for i, part in enumerate(parts):
            if part.strip(b"\r \t"):
                self.open_line = True
            if i < len(parts) - 1:
                self.lines += self.open_line
                self.open_line = False

    def total(self) -> int:
        return self.lines + self.open_line


async def spool(part: PartReader, *, max_bytes: int, max_rows: int = MAX_ROWS) -> Upload:
    """Copy a file part to a temporary file, checking size, encoding and row count."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    counter = _LineCounter()
    size = 0
    try:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"the file is larger than {max_bytes} bytes",
                                      limit=max_bytes)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = counter.lines + chunk[:exc.start].count(b"\n") + 1
                raise InvalidEncoding("save the file as UTF-8 (CSV UTF-8 in Excel)",
                                      line=line) from None
            counter.feed(chunk)
            out.write(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InvalidEncoding("the file ends inside a character",
                                  line=counter.total()) from None
        if counter.total() == 0:
            raise EmptyFile("the file is empty")
        data_lines = counter.total() - 1
        if data_lines > max_rows:
            raise TooManyRows(f"at most {max_rows} rows per import", limit=max_rows)
        out.seek(0)
        return Upload(out, size, data_lines)
    except BaseException:
        out.close()
        raise


def physical_lines(f: IO[bytes], max_line: int = MAX_LINE) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line; text is None for a line longer than `max_line`,
    whose bytes are skipped without being kept."""
    lineno = 0
    while True:
        raw = f.readline(max_line + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while (rest := f.readline(CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield lineno, None
            continue
        text = raw.decode("utf-8")
        if lineno == 1:
            text = text.removeprefix("\ufeff")
        yield lineno, text


@dataclass
class Record:
    """One CSV record: the line it starts on, its cells, or the error that made it unreadable."""

    line: int
    cells: list[str] = field(default_factory=list)
    error: str | None = None


class RecordReader:
    """Records of a spooled CSV with their first line numbers; skips blank lines."""

    def __init__(self, f: IO[bytes], max_line: int = MAX_LINE) -> None:
        self._lines = physical_lines(f, max_line)
        self._start: int | None = None
        self._too_long: list[int] = []
        self._last = 0
        self.delimiter = ","
        self._csv: Any = None

    def _feed(self) -> Iterator[str]:
        for lineno, text in self._lines:
            self._last = lineno
            if text is None:
                self._too_long.append(lineno)
                continue
            if self._start is None:
                self._start = lineno
            yield text

    def header(self) -> list[str]:
        """The first record, with the delimiter guessed from it (EmptyFile if there is none)."""
        for lineno, text in self._lines:
            if text is None:
                raise EmptyFile(f"line {lineno} (the header) is longer than {MAX_LINE} bytes")
            if text.strip():
                self.delimiter = guess_delimiter(text)
                self._csv = csv.reader(self._feed(), delimiter=self.delimiter, strict=True)
                try:
                    return next(csv.reader([text], delimiter=self.delimiter))
                except csv.Error:
                    raise EmptyFile("the header line is not CSV") from None
        raise EmptyFile("the file has no header line")

    def __iter__(self) -> Iterator[Record]:
        if self._csv is None:
            raise RuntimeError("read the header first")
        while True:
            self._start = None
            try:
                cells: list[str] | None = next(self._csv)
                error = None
            except StopIteration:
                yield from (Record(n, error="line_too_long") for n in self._too_long)
                return
            except csv.Error:
                cells, error = None, "malformed_row"
            yield from (Record(n, error="line_too_long") for n in self._too_long)
            self._too_long.clear()
            line = self._start if self._start is not None else self._last
            if error is not None:
                yield Record(line, error=error)
            elif cells and any(c.strip() for c in cells):
                yield Record(line, cells)


def guess_delimiter(header: str) -> str:
    """The most frequent of `,` `;` TAB in the header line outside quotes (`,` on a tie)."""
    outside = re.sub(r'"[^"]*"', "", header)
    counts = {d: outside.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def safe_cell(value: str | None) -> str:
    """A cell a spreadsheet will not run as a formula: a quote before a leading = + - @ TAB
    CR (after any leading spaces). Phone numbers we stored as E.164 pass unchanged."""
    if not value:
        return ""
    first = value.lstrip(" ")[:1]
    if first in FORMULA_START and not E164.fullmatch(value):
        return "'" + value
    return value


def _csv_line(cells: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(cells)
    return buf.getvalue().encode("utf-8")


async def export_chunks(conn: Any, settings: Settings) -> AsyncGenerator[bytes, None]:
    """The members as CSV (UTF-8 with a BOM for spreadsheets), a page of rows per chunk, read
    in one repeatable-read snapshot. Re-importing the file maps every column back."""
    q = tq(settings.sql_dir)
    yield "\ufeff".encode() + _csv_line(list(EXPORT_COLUMNS))
    after: tuple[Any, Any] = (None, None)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        while True:
            rows = await q.export_members_page(conn, after[0], after[1], EXPORT_PAGE)
            if not rows:
                return
            out = bytearray()
            for r in rows:
                values = [r["first_name"], r["last_name"], r["phone"], r["email"], r["opt_in"],
                          r["branch"], r["groups"], r["notes"], r["created_at"].isoformat()]
                out += _csv_line([safe_cell(v) for v in values])
            yield bytes(out)
            after = (rows[-1]["created_at"], rows[-1]["id"])
