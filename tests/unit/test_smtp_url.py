"""SMTP_URL parsing: schemes, ports, credentials, STARTTLS modes, clear errors."""

from __future__ import annotations

import pytest

from ywmessaging.auth.smtp import SmtpTarget, parse_smtp_url
from ywmessaging.config import Settings
from ywmessaging.errors import ConfigError


def test_smtp_urls() -> None:
    assert parse_smtp_url("smtp://mail.example.org") == SmtpTarget(
        "mail.example.org", 587, None, None, use_tls=False, start_tls=None)
    assert parse_smtp_url("smtps://u%40x:p%3Ass@mail.example.org") == SmtpTarget(
        "mail.example.org", 465, "u@x", "p:ss", use_tls=True, start_tls=None)
    assert parse_smtp_url("smtp://h:2525?starttls=require").start_tls is True
    assert parse_smtp_url("smtp://h:25?starttls=never").start_tls is False


@pytest.mark.parametrize(("url", "error"), [
    ("http://h", "smtp:// or smtps://"), ("smtp://", "no host"), ("smtp://h:99999", "port"),
    ("smtp://h?starttls=maybe", "auto, require or never"),
    ("smtps://h?starttls=require", "TLS already"),
])
def test_bad_smtp_urls_say_what_is_wrong(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_smtp_url(url)


def test_settings_refuse_a_bad_smtp_url_without_echoing_the_password() -> None:
    with pytest.raises(ConfigError, match="SMTP_URL") as info:
        Settings(smtp_url="smtp://user:hunter2@h:99999").validate()
    assert "hunter2" not in str(info.value)
