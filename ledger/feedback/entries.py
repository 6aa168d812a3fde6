"""What a shopper may post, checked before anything is stored, and the content of each kind
of entry (the hashed part).

The checks need no third party: a length limit, a limit on links (spam carries links), no
control or invisible formatting characters (they could hide text or reorder what a page
shows), a rating of 1 to 5, and something to say (a rating, a comment, or both).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ledger.feedback.chain import hex_sha256

MAX_TEXT = 2000
MAX_REPLY = 4000
MAX_REASON = 280
MAX_LINKS = 1
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)|\b[a-z0-9-]+\.(?:com|net|org|info|biz|ru|cn|xyz|top|io|shop)\b")
#: Line breaks and tabs are text; every other control or format character is refused.
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}
#: Combining marks one character may carry in a row: scripts stack a few (Vietnamese, Thai,
#: Hebrew points); dozens ("Zalgo" text) are drawn over the lines above and below.
MAX_MARKS_IN_A_ROW = 5


#: Each problem's sentence in English (the CLI's); the web app says them in the shopper's
#: language (api/routes/feedback.py), with the same parameters.
ENGLISH = {
    "too_long": "The {what} is %(length)s characters long; please keep it to %(limit)s.",
    "controls": "The {what} contains invisible control characters; please type it again without them.",
    "links": "The {what} contains more than %(limit)s link; please leave links out.",
    "rating": "The rating must be a number of stars from 1 to 5.",
    "empty": "Please choose a rating or write a comment (or both).",
    "question_empty": "Please write your question.",
}


@dataclass(frozen=True)
class Problem:
    """What is wrong with a field: a code of ENGLISH and its parameters."""

    code: str
    params: dict[str, str] = field(default_factory=dict)

    def english(self, what: str = "comment") -> str:
        """The problem as an English sentence about `what` (comment, reply, reason)."""
        return ENGLISH[self.code].replace("{what}", what) % self.params


class FeedbackRefused(ValueError):
    """A post that cannot be stored, with what to fix (one problem per field)."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        super().__init__("; ".join(p.english() for p in problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class Post:
    """A shopper's post as typed (the form or JSON), before it is checked."""

    rating: str | int | None
    text: str
    question: bool


def _bad_characters(value: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs") and char not in _ALLOWED_CONTROLS for char in value)


def _stacked_marks(value: str) -> bool:
    run = 0
    for char in value:
        run = run + 1 if unicodedata.category(char) in ("Mn", "Me") else 0
        if run > MAX_MARKS_IN_A_ROW:
            return True
    return False


def text_problem(value: str, limit: int) -> Problem | None:
    """Why `value` cannot be published (at most `limit` characters), or None."""
    if len(value) > limit:
        return Problem("too_long", {"length": f"{len(value):,}", "limit": f"{limit:,}"})
    if _bad_characters(value) or _stacked_marks(value):  # both hide or overdraw what a page shows
        return Problem("controls")
    if len(_LINK.findall(value)) > MAX_LINKS:
        return Problem("links", {"limit": str(MAX_LINKS)})
    return None


def normalised_text(value: str) -> str:
    """The text as compared for duplicates: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def text_key(value: str) -> str | None:
    """The duplicate key of a comment's text (None for a rating without text)."""
    normal = normalised_text(value)
    return hex_sha256(normal.encode()) if normal else None


def _rating(value: str | int | None) -> tuple[int | None, Problem | None]:
    if value is None or value == "":
        return None, None
    try:
        rating = int(value)
    except (TypeError, ValueError):
        return None, Problem("rating")
    if not 1 <= rating <= 5:
        return None, Problem("rating")
    return rating, None


def checked_comment(post: Post, batch_id: str, gtin: str, lot: str, at: int) -> dict[str, Any]:
    """The content of a shopper's comment, or FeedbackRefused naming each field to fix."""
    problems: dict[str, Problem] = {}
    rating, rating_problem = _rating(post.rating)
    if rating_problem:
        problems["rating"] = rating_problem
    text = post.text.replace("\r\n", "\n").strip()
    problem = text_problem(text, MAX_TEXT)
    if problem:
        problems["text"] = problem
    if not problems and rating is None and not text:
        problems["text"] = Problem("empty")
    if not problems and post.question and not text:
        problems["text"] = Problem("question_empty")
    if problems:
        raise FeedbackRefused(problems)
    return {
        "kind": "comment",
        "batch_id": batch_id,
        "gtin": gtin,
        "lot": lot,
        "rating": rating,
        "text": text,
        "question": bool(post.question and text),
        "at": at,
    }


def maker_content(kind: str, target: int, batch_id: str, by: str, at: int, **fields: Any) -> dict[str, Any]:
    """The content of a maker's reply or hide, before it is signed."""
    return {"kind": kind, "target": target, "batch_id": batch_id, "by": by, "at": at, **fields}
