"""The in-memory deny-list: what each kind of revocation refuses, and when it is forgotten."""

from __future__ import annotations

import uuid

import orjson

from ywmessaging.auth.revocations import REMOVED, DenyList, Revocations
from ywmessaging.auth.tokens import AccessClaims
from ywmessaging.config import Settings


def _claims(admin: uuid.UUID, session: uuid.UUID, vaf: int) -> AccessClaims:
    return AccessClaims(admin, uuid.uuid4(), "owner", session, "jti", 0, 10**10, vaf)


def test_a_session_revocation_refuses_that_session_only() -> None:
    deny = DenyList()
    admin, s1, s2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    deny.revoke_session(s1, 10**10)
    assert deny.refuses(_claims(admin, s1, 5))
    assert not deny.refuses(_claims(admin, s2, 5))


def test_an_admin_revocation_refuses_tokens_below_the_bound_only() -> None:
    deny = DenyList()
    admin, other = uuid.uuid4(), uuid.uuid4()
    deny.revoke_admin(admin, 200, 10**10)
    assert deny.refuses(_claims(admin, uuid.uuid4(), 199))
    assert not deny.refuses(_claims(admin, uuid.uuid4(), 200))
    assert not deny.refuses(_claims(other, uuid.uuid4(), 0))
    deny.revoke_admin(admin, 100, 10**10)   # an older row read late never loosens
    assert deny.refuses(_claims(admin, uuid.uuid4(), 150))
    deny.revoke_admin(admin, REMOVED, 10**10)
    assert deny.refuses(_claims(admin, uuid.uuid4(), 10**15))


def test_entries_are_forgotten_only_after_expiry_and_leeway() -> None:
    now = [1000.0]
    deny = DenyList(clock=lambda: now[0])
    s, admin = uuid.uuid4(), uuid.uuid4()
    deny.revoke_session(s, 1005.0)
    deny.revoke_admin(admin, 50, 1005.0)
    now[0] = 1014.0                       # past expiry, within the 10 s leeway
    assert deny.prune() == 0 and len(deny) == 2
    now[0] = 1016.0
    assert deny.prune() == 2 and len(deny) == 0


def test_notifications_and_rows_apply_alike_and_bad_payloads_are_ignored() -> None:
    rev = Revocations(None, Settings())
    s, admin = uuid.uuid4(), uuid.uuid4()
    rev.on_notify(orjson.dumps({"id": 1, "tenant_id": str(uuid.uuid4()), "kind": "session",
                                "subject": str(s), "valid_after_us": None,
                                "expires_at": 10**10}).decode())
    rev.on_notify("not json")
    rev.on_notify(orjson.dumps({"kind": "admin"}).decode())
    rev.deny.apply({"kind": "admin", "subject": admin, "valid_after_us": 7, "expires_at": 10**10})
    assert rev.deny.refuses(_claims(uuid.uuid4(), s, 0))
    assert rev.deny.refuses(_claims(admin, uuid.uuid4(), 6))
    assert len(rev.deny) == 2
    assert rev.ttl_s >= Settings().jwt_access_ttl + 10
