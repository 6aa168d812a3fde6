"""What a lot's (or a product's) feedback adds up to, and the threads a page shows:
each comment with the maker's replies, or a tombstone where the maker hid it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.feedback.store import Entry


@dataclass
class Thread:
    """A comment with the maker's answers; `hidden` holds the hide entry's content when hidden."""

    comment: Entry
    replies: list[Entry] = field(default_factory=list)
    hidden: Entry | None = None


@dataclass(frozen=True)
class Summary:
    """Comments and questions still shown (hidden ones are counted apart); ratings of all
    comments whose text is held, hidden or not."""

    comments: int
    ratings: int
    average_rating: float | None
    distribution: dict[int, int]
    questions: int
    questions_answered: int
    hidden: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (distribution keys as strings "1".."5")."""
        return {
            "comments": self.comments,
            "ratings": self.ratings,
            "average_rating": self.average_rating,
            "distribution": {str(stars): n for stars, n in self.distribution.items()},
            "questions": self.questions,
            "questions_answered": self.questions_answered,
            "hidden": self.hidden,
        }


def threads(found: Iterable[Entry]) -> list[Thread]:
    """The comments among `found` (oldest first), each with its replies and hide."""
    by_sequence: dict[int, Thread] = {}
    for entry in found:
        if entry.kind == "comment":
            by_sequence[entry.sequence] = Thread(entry)
        elif entry.target in by_sequence:
            thread = by_sequence[entry.target]
            if entry.kind == "reply":
                thread.replies.append(entry)
            elif entry.kind == "hide" and thread.hidden is None:
                thread.hidden = entry
    return list(by_sequence.values())


def summarise(found: list[Thread]) -> Summary:
    """Counts over the threads still shown; the average rating and distribution over every
    rating still held, hidden ones included: a maker who hides every one-star comment must
    not make the lot read "rated 5.0" (an erased comment's rating is gone with its text)."""
    shown = [t for t in found if t.hidden is None and t.comment.content is not None]
    held = [t.comment.content for t in found if t.comment.content is not None]
    ratings = [int(content["rating"]) for content in held if content.get("rating")]
    questions = [t for t in shown if t.comment.content and t.comment.content.get("question")]
    return Summary(
        comments=len(shown),
        ratings=len(ratings),
        average_rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
        distribution={stars: ratings.count(stars) for stars in range(5, 0, -1)},
        questions=len(questions),
        questions_answered=sum(1 for t in questions if t.replies),
        hidden=len(found) - len(shown),
    )


def thread_view(thread: Thread, names: Mapping[str, str]) -> dict[str, Any]:
    """One thread as pages and the API show it: the comment (or its tombstone) and replies
    naming the maker (organisation name by address, else the address)."""

    def maker(entry: Entry) -> dict[str, Any]:
        content = entry.content or {}
        by = str(content.get("by", ""))
        return {"sequence": entry.sequence, "by": by, "by_name": names.get(by.lower()) or by, "at": entry.created_at}

    comment = thread.comment.content
    view: dict[str, Any] = {"sequence": thread.comment.sequence, "at": thread.comment.created_at, "hidden": None}
    if thread.hidden is not None:
        hide = thread.hidden.content or {}
        view["hidden"] = {**maker(thread.hidden), "reason": hide.get("reason", "")}
        view.update(rating=None, text=None, question=False)
    else:
        view.update(
            rating=comment.get("rating") if comment else None,
            text=comment.get("text") if comment else None,
            question=bool(comment and comment.get("question")),
        )
    view["replies"] = [{**maker(r), "text": (r.content or {}).get("text", "")} for r in thread.replies]
    return view
