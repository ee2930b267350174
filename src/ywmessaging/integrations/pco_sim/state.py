"""The simulator's memory: one organization, its people and lists, OAuth codes and tokens,
webhook subscriptions, and the rate limit's window."""

from __future__ import annotations

import collections
import datetime
import itertools
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any


def iso(at: datetime.datetime) -> str:
    """Planning Center's timestamps: UTC, seconds, `Z`."""
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Person:
    """A person and their contact details."""

    id: str
    first_name: str
    last_name: str
    updated_at: datetime.datetime
    created_at: datetime.datetime
    phones: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Token:
    """An access token with its refresh token."""

    access: str
    refresh: str
    expires_at: float
    scope: str
    revoked: bool = False


@dataclass
class RateWindow:
    """A sliding window: at most `limit` requests in any `period` seconds."""

    limit: int = 100
    period: float = 20.0
    times: collections.deque[float] = field(default_factory=collections.deque)
    max_seen: int = 0

    def take(self, now: float) -> float:
        """0 when the request may go (and counts it), else the seconds to wait."""
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return self.times[0] + self.period - now
        self.times.append(now)
        self.max_seen = max(self.max_seen, len(self.times))
        return 0.0

    def retry_after(self, wait: float) -> str:
        """Retry-After as whole seconds (what clients such as pypco parse)."""
        return str(max(1, math.ceil(wait)))


@dataclass
class PcoSimState:
    """Everything the simulator knows."""

    client_id: str = "dev-pco-client"
    client_secret: str = "dev-pco-secret"
    organization_id: str = "1000001"
    organization_name: str = "Simulated Church"
    token_ttl: float = 7200.0
    base_url: str = ""
    people: dict[str, Person] = field(default_factory=dict)
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: RateWindow = field(default_factory=RateWindow)
    stats: collections.Counter[str] = field(default_factory=collections.Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000001))
    _clock: datetime.datetime | None = None

    def next_id(self) -> str:
        """A fresh numeric id (Planning Center's are numeric strings)."""
        return str(next(self._ids))

    def now(self) -> datetime.datetime:
        """Strictly increasing seconds: two changes never share an updated_at."""
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        if self._clock is not None and now <= self._clock:
            now = self._clock + datetime.timedelta(seconds=1)
        self._clock = now
        return now

    def issue(self, scope: str) -> Token:
        """A new token pair."""
        tok = Token(secrets.token_hex(32), secrets.token_hex(32), time.time() + self.token_ttl,
                    scope)
        self.tokens[tok.access] = tok
        self.tokens[tok.refresh] = tok
        return tok

    def valid_access(self, access: str) -> bool:
        """Whether `access` may call the API now."""
        tok = self.tokens.get(access)
        return (tok is not None and tok.access == access and not tok.revoked
                and tok.expires_at > time.time())

    def add_person(self, body: dict[str, Any]) -> Person:
        """A new person from a `/sim/people` body."""
        now = self.now()
        person = Person(self.next_id(), str(body.get("first_name", "")),
                        str(body.get("last_name", "")), now, now)
        self._contacts(person, body)
        self.people[person.id] = person
        return person

    def change_person(self, person: Person, body: dict[str, Any]) -> None:
        """Apply a `/sim/people/{id}` PATCH body."""
        for name in ("first_name", "last_name"):
            if name in body:
                setattr(person, name, str(body[name]))
        self._contacts(person, body)
        person.updated_at = self.now()

    def _contacts(self, person: Person, body: dict[str, Any]) -> None:
        if "phone" in body:
            person.phones = [] if body["phone"] is None else [{
                "id": self.next_id(), "number": str(body["phone"]),
                "location": str(body.get("phone_location", "Mobile")), "primary": True}]
        if "phones" in body:
            person.phones = [{"id": self.next_id(), "number": str(p["number"]),
                              "location": str(p.get("location", "Mobile")),
                              "primary": bool(p.get("primary", False))} for p in body["phones"]]
        if "email" in body:
            person.emails = [] if body["email"] is None else [{
                "id": self.next_id(), "address": str(body["email"]), "location": "Home",
                "primary": True}]
