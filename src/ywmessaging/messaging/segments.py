"""SMS segment count: GSM-7 (160 / 153 per part) or UCS-2 (70 / 67 per part), as a pure function.

GSM-7 counts septets: extension-table characters take two (escape + char) and are never split
across parts. UCS-2 counts UTF-16 code units: characters outside the BMP (most emoji) take two and
a surrogate pair is never split. One character outside GSM-7 switches the whole message to UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7 = "GSM-7"
UCS2 = "UCS-2"
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SegmentInfo:
    """How a text will be sent: encoding, parts, units used (septets or UTF-16 code units)."""

    encoding: str
    segments: int
    units: int
    per_segment: int
    remaining: int   # units still free in the last part before another part is needed


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(sizes: list[int], per_part: int) -> tuple[int, int]:
    """Greedy packing without splitting a character: (parts, units used in the last part)."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts, used


def count_segments(text: str) -> SegmentInfo:
    """Segments for `text` (an empty text is one segment)."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    single, multi = _LIMITS[encoding]
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units <= single:
        return SegmentInfo(encoding, 1, units, single, single - units)
    parts, last = _pack(sizes, multi)
    return SegmentInfo(encoding, parts, units, multi, multi - last)
