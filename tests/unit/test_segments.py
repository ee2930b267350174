"""Segment counting: GSM-7 (160 / 153), UCS-2 (70 / 67), extension characters, surrogates."""

from __future__ import annotations

import pytest

from ywmessaging.messaging.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    count_segments,
    is_gsm7,
)


@pytest.mark.parametrize(("length", "segments"), [
    (0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (1530, 10),
    (1531, 11),
])
def test_gsm7_boundaries(length: int, segments: int) -> None:
    info = count_segments("a" * length)
    assert (info.encoding, info.segments, info.units) == (GSM7, segments, length)


@pytest.mark.parametrize(("length", "segments"), [
    (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4),
])
def test_ucs2_boundaries(length: int, segments: int) -> None:
    text = "Ж" * length
    info = count_segments(text)
    assert (info.encoding, info.segments, info.units) == (UCS2, segments, length)


def test_extension_characters_count_two_septets() -> None:
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 80 + "a").segments == 2
    for c in "^{}\\[~]|€\f":
        assert c in GSM7_EXTENSION
        info = count_segments(c)
        assert (info.encoding, info.units) == (GSM7, 2)


def test_extension_character_is_never_split_across_parts() -> None:
    # 152 septets then one two-septet character: it cannot straddle parts 1 and 2.
    text = "a" * 152 + "€" + "a" * 10
    info = count_segments(text)
    assert info.units == 164
    assert info.segments == 2
    assert info.remaining == 153 - (2 + 10)


def test_one_character_outside_gsm7_switches_everything_to_ucs2() -> None:
    text = "a" * 100 + "é"   # é is in the GSM-7 basic table
    assert count_segments(text).encoding == GSM7
    text = "a" * 100 + "ê"   # ê is not
    info = count_segments(text)
    assert (info.encoding, info.segments) == (UCS2, 2)


def test_emoji_takes_two_code_units_and_is_not_split() -> None:
    assert count_segments("🙂").units == 2
    assert count_segments("🙂" * 35).segments == 1
    assert count_segments("🙂" * 35 + "a").segments == 2
    # 66 units then a surrogate pair: the pair goes whole to part 2
    info = count_segments("a" * 66 + "🙂" + "a" * 5)
    assert (info.units, info.segments, info.remaining) == (73, 2, 67 - 7)


def test_gsm7_detection() -> None:
    assert is_gsm7("Hello @ church! £5 ¿¡ ÄÖÑÜ§ àèéìòù Ç Ø Å Δ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ\n\r")
    assert not is_gsm7("smart ’quotes’")
    assert not is_gsm7("\x1b")   # the escape itself is not text
    assert len(GSM7_BASIC) == 127   # 128 table positions minus the escape


def test_remaining_in_single_part() -> None:
    assert count_segments("hello").remaining == 155
    assert count_segments("héllo").per_segment == 160
    assert count_segments("Жhello").remaining == 64


def test_longest_body_fits_outbox_limit() -> None:
    assert count_segments("a" * 1600).segments == 11
    assert count_segments("Ж" * 1600).segments == 24


def test_utf16_boundary_between_one_and_two_code_units() -> None:
    assert count_segments("\uffff").units == 1         # the last BMP code point: one unit
    assert count_segments("\U00010000").units == 2     # the first outside the BMP: a pair
    assert count_segments("\U0001f642").units == 2


def test_a_long_message_reports_the_per_part_limit() -> None:
    gsm = count_segments("a" * 161)
    assert (gsm.per_segment, gsm.remaining) == (153, 153 - 8)
    ucs = count_segments("Ж" * 71)
    assert (ucs.per_segment, ucs.remaining) == (67, 67 - 4)
