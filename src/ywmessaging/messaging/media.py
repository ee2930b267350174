"""MMS media: the outbound `media_urls` check, and inbound media as Telnyx sends it.

Outbound URLs are checked by their form only, never fetched: https, at most MAX_MEDIA, at most
MAX_URL_CHARS each, and a path ending in an extension of a content type carriers deliver by MMS
(MEDIA_TYPES). A HEAD request per URL would put a stranger's server (and its latency) on the
request path of every reply and broadcast, and the carrier fetches the file itself anyway: a URL
that does not serve what its extension says fails at the carrier, on that message's outbox row.

Inbound media is kept as Telnyx describes it (`url`, `content_type`, `size`, `hash_sha256`),
each field checked for type and length; the file itself is not copied (Telnyx keeps it for 30
days at that URL).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ValidationFailed

MAX_MEDIA = 10
MAX_URL_CHARS = 2048
# extension → content type: what Telnyx accepts for MMS to US carriers.
MEDIA_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "bmp": "image/bmp", "webp": "image/webp",
    "mp4": "video/mp4", "3gp": "video/3gpp", "mov": "video/quicktime",
    "mp3": "audio/mpeg", "m4a": "audio/mp4", "amr": "audio/amr", "wav": "audio/wav",
    "vcf": "text/vcard", "ics": "text/calendar", "txt": "text/plain", "pdf": "application/pdf",
}
_EXTS = "|".join(f"{e}|{e.upper()}" for e in sorted(MEDIA_TYPES))
# The same rule as openapi.yaml's MediaUrls pattern (an extension in lower or upper case).
MEDIA_URL = re.compile(r"^https://[^/?#\s]+/[^?#\s]*\.(" + _EXTS + r")([?#]\S*)?$")


def content_type_of(url: str) -> str | None:
    """The content type a media URL's extension names (None: not one we send)."""
    found = MEDIA_URL.match(url)
    return MEDIA_TYPES[found.group(1).lower()] if found else None


def media_urls(name: str, value: Any) -> tuple[str, ...] | None:
    """A `media_urls` field: null or 1..MAX_MEDIA https URLs of known media types (422)."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MEDIA:
        raise ValidationFailed(f"{name} must list 1 to {MAX_MEDIA} URLs", field=name)
    for url in value:
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
            raise ValidationFailed(f"{name} must hold URLs of at most {MAX_URL_CHARS} "
                                   "characters", field=name)
        if not url.startswith("https://"):
            raise ValidationFailed(f"{name} must hold https URLs", field=name,
                                   error_code="media_not_https")
        if content_type_of(url) is None:
            raise ValidationFailed(
                f"{name}: {url[:120]!r} does not end in the extension of a media type sent by "
                "MMS (jpg, jpeg, png, gif, bmp, webp, mp4, 3gp, mov, mp3, m4a, amr, wav, vcf, "
                "ics, txt, pdf)", field=name, error_code="media_type_unsupported")
    return tuple(value)


def outbound_media(urls: tuple[str, ...] | list[str] | None) -> list[dict[str, Any]]:
    """The stored form of outbound media (the shape inbound media has)."""
    return [{"url": u, "content_type": content_type_of(u), "size": None, "hash_sha256": None}
            for u in urls or ()]


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def inbound_media(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The media of a `message.received` payload, cleaned (at most MAX_MEDIA items)."""
    raw = payload.get("media")
    if not isinstance(raw, list):
        return []
    out: list[dict[str, Any]] = []
    for item in raw[:MAX_MEDIA]:
        if not isinstance(item, dict):
            continue
        url = _text(item.get("url"), MAX_URL_CHARS)
        if url is None:
            continue
        size = item.get("size")
        out.append({
            "url": url, "content_type": _text(item.get("content_type"), 128),
            "size": size if isinstance(size, int) and not isinstance(size, bool)
            and size >= 0 else None,
            "hash_sha256": _text(item.get("hash_sha256") or item.get("sha256"), 128),
        })
    return out
