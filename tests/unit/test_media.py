"""MMS media: the outbound URL rule (the server's and the spec's are one) and inbound media."""

from __future__ import annotations

import pytest
import yaml

from ywmessaging.config import REPO_ROOT
from ywmessaging.errors import ValidationFailed
from ywmessaging.messaging.media import (
    MEDIA_URL,
    content_type_of,
    inbound_media,
    media_urls,
    outbound_media,
)


def test_the_spec_states_the_servers_rule() -> None:
    doc = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
    spec = doc["components"]["schemas"]["MediaUrls"]
    assert spec["items"]["pattern"] == MEDIA_URL.pattern
    assert spec["maxItems"] == 10


@pytest.mark.parametrize(("url", "kind"), [
    ("https://cdn.example.org/a/photo.jpg", "image/jpeg"),
    ("https://cdn.example.org/a/PHOTO.JPEG?sig=1", "image/jpeg"),
    ("https://cdn.example.org/flyer.pdf#page=2", "application/pdf"),
    ("https://cdn.example.org/clip.mp4", "video/mp4"),
    ("https://cdn.example.org/photo", None),
    ("https://cdn.example.org/photo.exe", None),
    ("https://cdn.example.org/photo.jpg.exe", None),
    ("https://cdn.example.org", None),
    ("http://cdn.example.org/a.jpg", None),
])
def test_content_type_by_extension(url: str, kind: str | None) -> None:
    assert content_type_of(url) == kind


def test_media_urls_refusals() -> None:
    assert media_urls("media_urls", None) is None
    assert media_urls("media_urls", ["https://x.org/a.png"]) == ("https://x.org/a.png",)
    for bad, code in (([], "invalid"), (["https://x.org/a.png"] * 11, "invalid"),
                      ([3], "invalid"), (["http://x.org/a.png"], "media_not_https"),
                      (["https://x.org/a.zip"], "media_type_unsupported"),
                      ("https://x.org/a.png", "invalid")):
        with pytest.raises(ValidationFailed) as exc:
            media_urls("media_urls", bad)
        assert exc.value.errors[0].code == code


def test_inbound_media_is_cleaned() -> None:
    payload = {"media": [
        {"url": "https://m.telnyx.example/1", "content_type": "image/jpeg", "size": 10,
         "hash_sha256": "ab"},
        {"url": "https://m.telnyx.example/2", "size": True, "sha256": "cd"},
        {"content_type": "image/png"}, "junk", *[{"url": "https://m/x"}] * 20]}
    got = inbound_media(payload)
    assert got[0] == {"url": "https://m.telnyx.example/1", "content_type": "image/jpeg",
                      "size": 10, "hash_sha256": "ab"}
    assert got[1] == {"url": "https://m.telnyx.example/2", "content_type": None, "size": None,
                      "hash_sha256": "cd"}
    assert len(got) == 8          # the first 10 items, of which two had no url
    assert inbound_media({"media": None}) == [] and inbound_media({}) == []
    assert outbound_media(["https://x.org/a.gif"]) == [
        {"url": "https://x.org/a.gif", "content_type": "image/gif", "size": None,
         "hash_sha256": None}]
