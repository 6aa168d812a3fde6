"""Attacks on the feedback log by whoever can write to its database behind the app's back:
the pages group and show entries by the row's columns (lot, product, kind, time, target),
the hash chain covers only the content. Each attack below leaves every hash intact and
changes what a page shows; `check_log` (what `provenance feedback verify` runs) must say so.
A genuine erasure (a signed hide with `erased: true`) must still verify."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger.feedback.entries import Post, checked_comment, maker_content
from ledger.feedback.signing import typed_data
from ledger.feedback.store import FeedbackStore
from ledger.feedback.summary import threads
from ledger.feedback.verify import check_log

LOT_A = "0x" + "aa" * 32
LOT_B = "0x" + "bb" * 32
GTIN_A = "09506000134352"
GTIN_B = "09506000134369"
ADMIN = Account.from_key("0x" + "42" * 32)


def signed(content: dict[str, Any]) -> dict[str, Any]:
    """`content` signed by the test's admin key, as MakerDesk signs it."""
    message = encode_typed_data(full_message=typed_data(content))
    return {**content, "signature": "0x" + ADMIN.sign_message(message).signature.hex().removeprefix("0x")}


def comment(store: FeedbackStore, text: str, lot: str = LOT_A, gtin: str = GTIN_A) -> int:
    content = checked_comment(Post(1 if "bad" in text else 5, text, False), lot, gtin, "L1", 1_700_000_000)
    return store.append(content, batch_id=lot, gtin=gtin).sequence


def hide(store: FeedbackStore, target: int, erase: bool = False) -> int:
    content = signed(
        maker_content("hide", target, LOT_A, ADMIN.address, 1_700_000_100, chain_id=31337, reason="spam", erased=erase)
    )
    return store.append(content, batch_id=LOT_A, gtin=GTIN_A, target=target, erase=target if erase else None).sequence


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = FeedbackStore.open(None, tmp_path)
    yield opened
    opened.dispose()


def tamper(tmp_path: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(tmp_path / "feedback.sqlite") as db:
        db.execute(sql, args)


def makers(store: FeedbackStore) -> dict[int, set[str]]:
    return {e.sequence: {ADMIN.address.lower()} for e in store.log(limit=1000) if e.kind == "comment"}


def problems(store: FeedbackStore) -> list[str]:
    report = check_log(store.log(limit=1000), [], makers(store))
    assert report.ok is (not report.problems())
    return report.problems()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("batch_id", LOT_B),  # the bad review moves to another lot's page
        ("gtin", GTIN_B),  # ... or out of the product's summary
        ("kind", "note"),  # ... or is no comment at all any more: no page shows it
        ("created_at", 1_900_000_000),  # ... or is dated after the maker's answer
    ],
)
def test_a_comment_moved_off_its_lots_page_in_the_database_is_found(store, tmp_path, column, value):
    bad = comment(store, "bad beans, mouldy")
    comment(store, "good beans")
    assert not problems(store)
    tamper(tmp_path, f"UPDATE feedback_entries SET {column} = ? WHERE sequence = ?", value, bad)  # noqa: S608 - test's own column
    if column in ("batch_id", "kind"):  # the attack works: the lot's page no longer shows it
        assert bad not in [t.comment.sequence for t in threads(store.entries_of([LOT_A]))]
    found = problems(store)
    assert any(f"entry {bad}'s stored {column} disagree with its hashed content" in p for p in found), found


def test_a_hide_moved_onto_another_comment_is_found(store, tmp_path):
    spam = comment(store, "buy cheap watches")
    honest = comment(store, "bad taste, I am disappointed")
    tombstone = hide(store, spam)
    assert not problems(store)
    # The admin's signed hide of the spam now hides the honest complaint instead.
    tamper(tmp_path, "UPDATE feedback_entries SET target = ? WHERE sequence = ?", honest, tombstone)
    shown = {t.comment.sequence: t.hidden for t in threads(store.entries_of([LOT_A]))}
    assert shown[honest] is not None and shown[spam] is None  # what a page would show
    found = problems(store)
    assert any(f"entry {tombstone}'s stored target disagree" in p for p in found), found


def test_a_comments_text_blanked_without_a_hide_is_found(store, tmp_path):
    honest = comment(store, "bad taste, I am disappointed")
    comment(store, "fine")
    tamper(tmp_path, "UPDATE feedback_entries SET content = NULL, text_key = NULL WHERE sequence = ?", honest)
    found = problems(store)
    assert f"entry {honest}'s content was removed, but no hide erased it" in found, found


def test_a_genuine_erasure_verifies_and_cannot_be_reused_for_another_comment(store, tmp_path):
    personal = comment(store, "call me on 555-0100")
    other = comment(store, "bad taste")
    hide(store, personal, erase=True)
    assert store.entry(personal).content is None
    assert not problems(store)
    # The erasure names the comment it erased: blanking another one is not covered by it.
    tamper(tmp_path, "UPDATE feedback_entries SET content = NULL WHERE sequence = ?", other)
    assert f"entry {other}'s content was removed, but no hide erased it" in problems(store)
