"""Shoppers' feedback as pages and the API show it: a lot's threads (comments, the maker's
replies, tombstones), its and its product's summaries, and the form.

Product pages are cached per index version, and their feedback section is a marker there
(api/templates/feedback.html without `feedback`). Each request fills the marker in with
the section from this board's own cache (`fill`), versioned by the feedback log (its last
position and erasures) and the minute, like the page itself: a post shows at once, the
product page is not rebuilt for it, and pages stay byte-identical between requests of the
same versions (HEAD and GET agree, caches work). The price: the page's form token carries
the time its section was built (at most a minute before it was served), so on a page the
minimum fill time counts from then; the form on a page of its own (GET /feedback) and the
form shown again after a refusal carry a token issued for that request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from api.deps import PageCache
from api.feedback_guard import FormTokens, RateLimiter
from api.i18n import current_language, use_language
from api.render import render
from ledger.config import Settings
from ledger.feedback.store import Entry, FeedbackStore
from ledger.feedback.summary import summarise, thread_view, threads
from ledger.queries import ReadModel

#: The latest comments a product page shows (the page stays small); the rest on /feedback.
PAGE_COMMENTS = 6
#: A comment or answer longer than this is cut on the product page, with a link to all of it,
#: so six comments of the longest kind keep the page under its 60 KB budget.
PAGE_TEXT_CUT = 300
#: What the cached product page holds where the feedback section goes.
SECTION_MARKER = b"<!--feedback-section-->"


@dataclass
class FeedbackBoard:
    """The feedback store, the form's tokens and the rate limit of one web process."""

    settings: Settings
    store: FeedbackStore
    tokens: FormTokens
    limiter: RateLimiter
    sections: PageCache = field(default_factory=PageCache)

    def __post_init__(self) -> None:
        self.sections.current = self.section_version

    @classmethod
    def open(cls, settings: Settings) -> FeedbackBoard:
        """The board for `settings` (opens the store; the form key is created once)."""
        return cls(
            settings,
            FeedbackStore.open(settings.feedback_database_url, settings.data_dir),
            FormTokens(settings.data_dir / "feedback" / "form.key", settings.feedback_min_fill_seconds),
            RateLimiter(settings.feedback_posts_per_hour),
        )

    def version(self) -> int:
        """Changes with every entry appended or erased."""
        return self.store.version()

    def section_version(self) -> tuple[int, int]:
        """What a cached section depends on: the log, and the minute (its form token's age)."""
        return self.version(), int(time.time()) // 60

    async def fill(self, html: bytes, model: ReadModel, view: dict[str, Any], page_path: str, language: str | None) -> bytes:
        """The cached product page `html` with the lot's feedback section in place of its marker."""
        at = html.find(SECTION_MARKER)
        if at < 0:
            return html
        language = language or current_language()

        def build() -> bytes:
            with use_language(language):
                section = self.section(model, view["batch_id"], view["gtin"], page_path)
                return render("feedback.html", feedback=section).encode()

        key = ("feedback", view["batch_id"], language)
        section: bytes = await self.sections.get(key, self.section_version(), build)
        return b"".join((html[:at], section, html[at + len(SECTION_MARKER) :]))

    def discussion(self, model: ReadModel, found: list[Entry]) -> dict[str, Any]:
        """Summary and threads of `found`, makers named as the ledger names them."""
        grouped = threads(found)
        makers = {str((e.content or {}).get("by")) for e in found if e.kind != "comment" and e.content}
        names = model.who(makers)
        return {
            "summary": summarise(grouped).as_dict(),
            "comments": [thread_view(t, {a.lower(): n for a, n in names.items()}) for t in grouped],
        }

    def lot(self, model: ReadModel, batch_id: str) -> dict[str, Any]:
        """A lot's feedback: summary and threads."""
        return self.discussion(model, self.store.entries_of([batch_id]))

    def product(self, model: ReadModel, gtin: str) -> dict[str, Any]:
        """A product's (every lot of the GTIN) feedback: summary and threads."""
        return self.discussion(model, self.store.entries_of(gtin=gtin))

    def section(self, model: ReadModel, batch_id: str, gtin: str, page_path: str) -> dict[str, Any]:
        """What the product page's feedback section shows, the form with a token issued now."""
        lot = self.lot(model, batch_id)
        product = self.store.entries_of(gtin=gtin)
        newest = lot["comments"][::-1]
        return {
            "summary": lot["summary"],
            "comments": [shortened(c) for c in newest[:PAGE_COMMENTS]],
            "more": max(0, len(newest) - PAGE_COMMENTS),
            "product_summary": summarise(threads(product)).as_dict(),
            "form": empty_form(batch_id, self.tokens.issue(batch_id), page_path),
        }


def _cut(text: str | None) -> str | None:
    """`text`, or its first PAGE_TEXT_CUT characters ended at a word and an ellipsis."""
    if text is None or len(text) <= PAGE_TEXT_CUT:
        return text
    head = text[:PAGE_TEXT_CUT]
    return (head.rsplit(maxsplit=1)[0] if " " in head[PAGE_TEXT_CUT // 2 :] else head).rstrip() + "…"


def shortened(thread: dict[str, Any]) -> dict[str, Any]:
    """A thread as the product page shows it: long texts cut (`cut` says so; the feedback
    page shows them whole)."""
    replies = [{**r, "text": _cut(r.get("text"))} for r in thread.get("replies", [])]
    cut = _cut(thread.get("text")) != thread.get("text") or any(
        r["text"] != o.get("text") for r, o in zip(replies, thread.get("replies", []), strict=True)
    )
    return {**thread, "text": _cut(thread.get("text")), "replies": replies, "cut": cut}


def empty_form(batch_id: str, token: str, page_path: str, **typed: Any) -> dict[str, Any]:
    """The form's fields (what was typed, when it is shown again with errors)."""
    return {
        "batch_id": batch_id,
        "token": token,
        "page_path": page_path,
        "rating": typed.get("rating") or "",
        "text": typed.get("text") or "",
        "question": bool(typed.get("question")),
        "errors": typed.get("errors") or {},
    }
