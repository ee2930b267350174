"""Member rows of an import file: which column is which field, and each record checked and
normalized (or the reason it cannot be imported)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import AppError, ValidationFailed
from ..values import email as email_check
from .csvio import Record
from .phones import InvalidPhone, normalize_phone

MAX_GROUPS_PER_ROW = 20
_GROUP_SPLIT = re.compile(r"[;|,]")

# Column names people use, compared after lower-casing and dropping everything but letters and
# digits ("E-mail Address" -> "emailaddress").
ALIASES: dict[str, frozenset[str]] = {
    "first_name": frozenset({"firstname", "first", "givenname", "forename", "fname"}),
    "last_name": frozenset({"lastname", "last", "surname", "familyname", "lname"}),
    "name": frozenset({"name", "fullname", "membername"}),
    "phone": frozenset({"phone", "phonenumber", "mobile", "mobilephone", "mobilenumber",
                        "cell", "cellphone", "cellnumber", "telephone", "tel", "sms",
                        "smsnumber", "number"}),
    "email": frozenset({"email", "emailaddress", "mail"}),
    "groups": frozenset({"group", "groups", "groupname", "groupnames", "ministry",
                         "ministries"}),
    "branch": frozenset({"branch", "campus", "location", "site"}),
    "notes": frozenset({"notes", "note", "comment", "comments"}),
}


class MissingPhoneColumn(ValidationFailed):
    code, title = "missing_phone_column", "The header names no phone column"


class DuplicateColumn(ValidationFailed):
    code, title = "duplicate_column", "Two columns of the header mean the same field"


def header_key(name: str) -> str:
    """A header cell reduced to lower-case letters and digits."""
    text = unicodedata.normalize("NFKC", name).lower()
    return "".join(c for c in text if c.isalnum())


def map_columns(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """{field: column index} for the known fields, and the names of the ignored columns."""
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        key = header_key(name)
        found = next((f for f, names in ALIASES.items() if key in names), None)
        if found is None:
            if name.strip():
                ignored.append(name.strip()[:100])
            continue
        if found in columns:
            raise DuplicateColumn(f"columns {columns[found] + 1} and {index + 1} both mean "
                                  f"{found}", field=found)
        columns[found] = index
    if "phone" not in columns:
        raise MissingPhoneColumn("name one column phone (or mobile, cell, phone number)",
                                 field="phone")
    return columns, ignored


REASONS = {
    "line_too_long": "the line is longer than 64 KiB",
    "malformed_row": "the row is not valid CSV",
    "too_many_fields": "the row has more cells than the header",
    "missing_phone": "the phone cell is empty",
    "invalid_phone": "the phone number is not valid",
    "duplicate_phone": "an earlier row of the file has the same phone number",
    "invalid_name": "a name is longer than 100 characters",
    "invalid_email": "the email address is not valid",
    "invalid_group": "a group name is longer than 100 characters (or too many groups)",
    "unknown_branch": "no branch has this name",
    "invalid_notes": "notes are longer than 2000 characters",
    "rejected": "the database refused the row",
    "plan_limit_reached": "the church's plan allows no more members (the row would add one)",
}


@dataclass(frozen=True)
class MemberRow:
    """One valid record, normalized."""

    line: int
    phone: str
    first_name: str | None
    last_name: str | None
    email: str | None
    branch_id: uuid.UUID | None
    notes: str | None
    groups: tuple[str, ...]


@dataclass
class RowError(Exception):
    """Why one record was not imported."""

    line: int
    code: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "field": self.field,
                "message": REASONS.get(self.code, self.code)}


def _clean(value: str) -> str:
    """Cell text with control characters dropped and runs of spaces collapsed."""
    if not value.isprintable():
        value = "".join(c for c in value if unicodedata.category(c) != "Cc" or c.isspace())
    return " ".join(value.split())


class RowParser:
    """Checks records against one import's columns, region and branches (not thread-safe)."""

    def __init__(self, columns: dict[str, int], width: int, region: str,
                 branches: dict[str, uuid.UUID]) -> None:
        self.columns, self.width, self.region, self.branches = columns, width, region, branches
        self.seen: set[str] = set()

    def _cell(self, cells: list[str], name: str) -> str | None:
        index = self.columns.get(name)
        if index is None or index >= len(cells):
            return None
        return _clean(cells[index]) or None

    def parse(self, rec: Record) -> MemberRow | RowError:
        """The member of a record, or why it cannot be imported."""
        try:
            return self._parse(rec)
        except RowError as err:
            return err

    def _parse(self, rec: Record) -> MemberRow:
        if rec.error:
            raise RowError(rec.line, rec.error)
        if len(rec.cells) > self.width and any(c.strip() for c in rec.cells[self.width:]):
            raise RowError(rec.line, "too_many_fields")
        phone = self._phone(rec)
        first, last = self._names(rec)
        email = self._cell(rec.cells, "email")
        if email is not None:
            try:
                email = email_check()("email", email)
            except AppError:
                raise RowError(rec.line, "invalid_email", "email") from None
        notes = self._cell(rec.cells, "notes")
        if notes is not None and len(notes) > 2000:
            raise RowError(rec.line, "invalid_notes", "notes")
        row = MemberRow(rec.line, phone, first, last, email, self._branch(rec), notes,
                        self._groups(rec))
        self.seen.add(phone)
        return row

    def _phone(self, rec: Record) -> str:
        raw = self._cell(rec.cells, "phone")
        if raw is None:
            raise RowError(rec.line, "missing_phone", "phone")
        try:
            phone = normalize_phone(raw, self.region)
        except InvalidPhone:
            raise RowError(rec.line, "invalid_phone", "phone") from None
        if phone in self.seen:
            raise RowError(rec.line, "duplicate_phone", "phone")
        return phone

    def _names(self, rec: Record) -> tuple[str | None, str | None]:
        first = self._cell(rec.cells, "first_name")
        last = self._cell(rec.cells, "last_name")
        full = self._cell(rec.cells, "name")
        if full and first is None and last is None:
            first, _, last = full.rpartition(" ")
            first, last = (first or last), (last if first else None)
        for name, value in (("first_name", first), ("last_name", last)):
            if value is not None and len(value) > 100:
                raise RowError(rec.line, "invalid_name", name)
        return first, last

    def _branch(self, rec: Record) -> uuid.UUID | None:
        name = self._cell(rec.cells, "branch")
        if name is None:
            return None
        found = self.branches.get(name.lower())
        if found is None:
            raise RowError(rec.line, "unknown_branch", "branch")
        return found

    def _groups(self, rec: Record) -> tuple[str, ...]:
        cell = self._cell(rec.cells, "groups")
        if cell is None:
            return ()
        names = tuple(dict.fromkeys(n for n in (p.strip() for p in _GROUP_SPLIT.split(cell))
                                    if n))
        if len(names) > MAX_GROUPS_PER_ROW or any(len(n) > 100 for n in names):
            raise RowError(rec.line, "invalid_group", "groups")
        return names
