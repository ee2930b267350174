"""SMS keywords (carrier reference §1.7–1.8): STOP and its synonyms, START, HELP.

The whole message must be the keyword after normalising it: NFKC, casefold, punctuation and
symbols stripped at both ends, inner hyphens/underscores read as spaces, inner spaces collapsed.
"YES" opts in only a member who is opted out (otherwise it is an ordinary reply such as "yes"
to "Can you serve on Sunday?" and belongs in the conversation).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class KeywordKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset({"stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit",
                           "revoke", "opt out", "optout"})
OPT_IN_WORDS = frozenset({"start", "unstop"})
OPT_IN_IF_OPTED_OUT = frozenset({"yes"})
HELP_WORDS = frozenset({"help", "info"})
# Phrases a reasonable person would read as "stop texting me" (FCC 24-24): not applied
# automatically, but flagged in the audit log for staff to review.
_REVOCATION_HINTS = re.compile(
    r"\b(stop (texting|messaging|sending)|no more (texts|messages)|remove me|take me off|"
    r"unsubscribe me|leave me alone|do not (text|message)|don'?t (text|message))\b")


@dataclass(frozen=True)
class Keyword:
    """A matched keyword: what it does and the normalised word (for the consent trail)."""

    kind: KeywordKind
    word: str


def _edge(c: str) -> bool:
    return c.isspace() or unicodedata.category(c)[0] in "PS"


def normalize(text: str) -> str:
    """The message as keywords are matched: NFKC, casefolded, edges trimmed, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and _edge(folded[start]):
        start += 1
    while end > start and _edge(folded[end - 1]):
        end -= 1
    inner = re.sub(r"[-_]", " ", folded[start:end])
    return " ".join(inner.split())


def classify(text: str, *, opted_out: bool) -> Keyword | None:
    """The keyword this whole message is, or None for an ordinary message."""
    word = normalize(text)
    if word in OPT_OUT_WORDS:
        return Keyword(KeywordKind.OPT_OUT, word.upper())
    if word in OPT_IN_WORDS or (opted_out and word in OPT_IN_IF_OPTED_OUT):
        return Keyword(KeywordKind.OPT_IN, word.upper())
    if word in HELP_WORDS:
        return Keyword(KeywordKind.HELP, word.upper())
    return None


def possible_revocation(text: str) -> bool:
    """True when an ordinary message reads like a request to stop (flag it for review)."""
    return _REVOCATION_HINTS.search(normalize(text)) is not None
