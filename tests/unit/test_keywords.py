"""SMS keywords: every STOP synonym, START, HELP, the opted-out-only YES, and the normalising
that lets "Stop." or "OPT-OUT" count while a sentence that merely contains "stop" does not.

The words are spelled out here on purpose, not read from the module's sets: deleting a word
from a set must fail a test (a member texting CANCEL who keeps receiving messages is a
violation of the carrier rules and of the law).
"""

from __future__ import annotations

import pytest

from ywmessaging.messaging.keywords import (
    Keyword,
    KeywordKind,
    classify,
    normalize,
    possible_revocation,
)

OPT_OUT = ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
           "OPT OUT", "OPTOUT"]


@pytest.mark.parametrize("word", OPT_OUT)
@pytest.mark.parametrize("opted_out", [False, True])
def test_every_stop_synonym_opts_out(word: str, opted_out: bool) -> None:
    assert classify(word, opted_out=opted_out) == Keyword(KeywordKind.OPT_OUT, word)
    assert classify(word.lower(), opted_out=opted_out) == Keyword(KeywordKind.OPT_OUT, word)


@pytest.mark.parametrize("word", ["START", "UNSTOP"])
@pytest.mark.parametrize("opted_out", [False, True])
def test_start_and_unstop_opt_in(word: str, opted_out: bool) -> None:
    assert classify(word.title(), opted_out=opted_out) == Keyword(KeywordKind.OPT_IN, word)


@pytest.mark.parametrize("word", ["HELP", "INFO"])
@pytest.mark.parametrize("opted_out", [False, True])
def test_help_and_info_ask_for_help(word: str, opted_out: bool) -> None:
    assert classify(word.lower(), opted_out=opted_out) == Keyword(KeywordKind.HELP, word)


def test_yes_opts_in_only_a_member_who_is_opted_out() -> None:
    assert classify("Yes", opted_out=True) == Keyword(KeywordKind.OPT_IN, "YES")
    assert classify("Yes", opted_out=False) is None  # "yes" to "Can you serve on Sunday?"


@pytest.mark.parametrize("text", ["See you Sunday", "Thanks!", "no", "y", "ok", "START NOW"])
def test_an_opted_out_members_ordinary_text_does_not_resubscribe_them(text: str) -> None:
    assert classify(text, opted_out=True) is None


@pytest.mark.parametrize(("text", "word"), [
    ("Stop.", "STOP"),
    ("  stop  ", "STOP"),
    ("STOP!!!", "STOP"),
    ("¡Stop!", "STOP"),
    ('"stop"', "STOP"),
    ("(stop)", "STOP"),
    ("STOP 🙏", "STOP"),               # a symbol at the end is trimmed like punctuation
    ("\tSTOP\n", "STOP"),
    ("ＳＴＯＰ", "STOP"),               # full-width letters (NFKC)
    ("OPT-OUT", "OPT OUT"),
    ("opt_out", "OPT OUT"),
    ("Opt - Out", "OPT OUT"),
    ("STOP  ALL", "STOP ALL"),
    ("stop-all.", "STOP ALL"),
])
def test_punctuation_case_and_spacing_around_a_keyword(text: str, word: str | None) -> None:
    want = Keyword(KeywordKind.OPT_OUT, word) if word else None
    assert classify(text, opted_out=False) == want


@pytest.mark.parametrize("text", [
    "", " ", "!!!", "🙏", "stop it", "please stop", "st.op", "s top", "stop all now",
    "I'll stop by after church", "don't stop", "STOP?STOP", "helpful", "ending", "startle",
])
def test_texts_that_are_not_a_keyword(text: str) -> None:
    assert classify(text, opted_out=False) is None
    assert classify(text, opted_out=True) is None


@pytest.mark.parametrize(("text", "want"), [
    ("  Hello,   World! ", "hello, world"),
    ("--Stop--", "stop"),
    ("a-b_c", "a b c"),
    ("ﬁne", "fine"),                    # NFKC ligature
    ("STRASSE", "strasse"),
    ("Straße", "strasse"),             # casefold, not lower
    ("x\u00a0\u2003y", "x y"),         # inner Unicode spaces collapse to one
    ("...", ""),
    ("", ""),
])
def test_normalize(text: str, want: str) -> None:
    assert normalize(text) == want


@pytest.mark.parametrize("text", [
    "Please stop texting me", "STOP MESSAGING ME", "stop sending these", "No more texts please",
    "no more messages", "Remove me from this list", "take me off your list",
    "unsubscribe me", "Leave me alone!", "Do not text me again", "do not message me",
    "Don't text me", "dont message me", "Please take-me-off",
])
def test_stop_texting_me_phrases_are_flagged(text: str) -> None:
    assert classify(text, opted_out=False) is None  # not applied automatically...
    assert possible_revocation(text)                # ...but flagged for staff to review


@pytest.mark.parametrize("text", [
    "", "STOP", "I'll stop by after church", "remove meat from the list", "no more tea",
    "Don't texting", "we do not textile", "See you Sunday",
])
def test_ordinary_texts_are_not_flagged(text: str) -> None:
    assert not possible_revocation(text)
