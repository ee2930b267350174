"""Explicit JSON body validation: unknown fields, types, sizes, emails."""

from __future__ import annotations

from typing import Any

import pytest

from ywmessaging.api.validation import fields
from ywmessaging.errors import ValidationFailed
from ywmessaging.values import boolean, choice, email, secret, text


def _field_error(body: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(ValidationFailed) as info:
        fields(body, **kw)
    assert (info.value.status, info.value.code) == (422, "validation_failed")
    return str(info.value.extra["field"])


def test_unknown_missing_wrong_type_and_oversize() -> None:
    spec = {"required": {"name": text(5)}, "optional": {"flag": boolean()}}
    assert _field_error({"name": "ok", "role": "owner"}, **spec) == "role"
    assert _field_error({}, **spec) == "name"
    assert _field_error({"name": 5}, **spec) == "name"
    assert _field_error({"name": "toolong"}, **spec) == "name"
    assert _field_error({"name": "ok", "flag": 1}, **spec) == "flag"
    assert _field_error({"name": "a\x00b"}, **spec) == "name"
    assert _field_error({"name": "   "}, **spec) == "name"
    assert fields({"name": " ok "}, **spec) == {"name": "ok", "flag": None}


def test_secret_kept_exactly_and_bounded() -> None:
    assert fields({"p": "  spaced  "}, required={"p": secret()}) == {"p": "  spaced  "}
    assert _field_error({"p": "x" * 1025}, required={"p": secret()}) == "p"
    assert _field_error({"p": ""}, required={"p": secret()}) == "p"


def test_choice() -> None:
    assert fields({"r": "admin"}, required={"r": choice("owner", "admin")}) == {"r": "admin"}
    assert _field_error({"r": "root"}, required={"r": choice("owner", "admin")}) == "r"


@pytest.mark.parametrize(("raw", "clean"), [
    ("  Pastor@Example.ORG ", "pastor@example.org"),
    ("ｐａｓｔｏｒ@example.org", "pastor@example.org"),  # full-width letters (NFKC)
])
def test_email_normalized(raw: str, clean: str) -> None:
    assert fields({"email": raw}, required={"email": email()}) == {"email": clean}


@pytest.mark.parametrize("raw", ["nobody", "@example.org", "a@b", "a b@example.org",
                                 "x" * 250 + "@example.org", 7])
def test_email_refused(raw: Any) -> None:
    assert _field_error({"email": raw}, required={"email": email()}) == "email"
