"""The feedback log's store: appends take turns (two writers never share a position), a
kill -9 in the middle of posting leaves a log that still verifies, the hash chain is the
documented one, and erasing a comment's text keeps the chain intact."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger.feedback.chain import GENESIS, content_hash, entry_hash, recompute
from ledger.feedback.entries import FeedbackRefused, Post, checked_comment
from ledger.feedback.store import FeedbackStore
from ledger.feedback.summary import summarise, threads
from ledger.feedback.verify import check_log

BATCH = "0x" + "11" * 32
GTIN = "09506000134352"

#: Appends comments forever, printing each position once its transaction committed.
WRITER = """
import sys, time
from pathlib import Path
from ledger.feedback.store import FeedbackStore
store = FeedbackStore.open(sys.argv[1] or None, Path(sys.argv[2]))
n = 0
while True:
    n += 1
    content = {"kind": "comment", "batch_id": BATCH, "gtin": GTIN, "lot": "L", "rating": 5,
               "text": f"{sys.argv[3]} {n} " + "x" * 500, "question": False, "at": int(time.time())}
    entry = store.append(content, batch_id=BATCH, gtin=GTIN)
    print(entry.sequence, flush=True)
""".replace("BATCH", repr(BATCH)).replace("GTIN", repr(GTIN))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty feedback store's URL ('' for the data directory's SQLite file)."""
    if request.param == "sqlite":
        return ""
    # The project's PostgreSQL fixture (tests/ledger/conftest.py) provides one or fails: no skip.
    url: str = request.getfixturevalue("postgres_url")
    engine = create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS feedback_entries, feedback_anchors"))
    engine.dispose()
    return url


def start_writer(url: str, data_dir: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, url, str(data_dir), name], stdout=subprocess.PIPE, text=True)


def test_kill_9_while_posting_leaves_a_log_that_verifies(store_url, tmp_path):
    committed = 0
    for round_ in range(4):
        writer = start_writer(store_url, tmp_path, f"round {round_}")
        seen = [int(writer.stdout.readline()) for _ in range(5)]  # it is writing now
        time.sleep(0.05 * round_)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        committed = max(committed, seen[-1])
    store = FeedbackStore.open(store_url or None, tmp_path)
    links = store.links()
    hashes, breaks = recompute(links)
    assert not breaks, breaks
    assert [link.sequence for link in links] == list(range(1, len(links) + 1))
    assert len(links) >= committed  # every entry the writer saw committed is there
    assert store.head().hash == hashes[-1]
    store.dispose()


def test_two_writers_at_once_take_turns(store_url, tmp_path):
    writers = [start_writer(store_url, tmp_path, name) for name in ("left", "right")]
    for writer in writers:
        for _ in range(30):
            writer.stdout.readline()
    for writer in writers:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    store = FeedbackStore.open(store_url or None, tmp_path)
    entries = store.log(limit=100_000)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert {e.content["text"].split()[0] for e in entries} == {"left", "right"}
    assert check_log(entries, []).ok
    store.dispose()


def test_the_chain_is_the_documented_one(tmp_path):
    store = FeedbackStore.open(None, tmp_path)
    first = store.append(checked_comment(Post(5, "Great", False), BATCH, GTIN, "L", 1_700_000_000), batch_id=BATCH, gtin=GTIN)
    second = store.append(checked_comment(Post(None, "Why?", True), BATCH, GTIN, "L", 1_700_000_001), batch_id=BATCH, gtin=GTIN)
    assert first.entry_hash == entry_hash(GENESIS, content_hash(first.content), 1)
    assert second.entry_hash == entry_hash(first.entry_hash, content_hash(second.content), 2)
    # sha256 over RFC 8785 JSON (here: no spaces), a fixed vector another implementation can check itself with.
    vector = '["provenance-feedback/1","0x' + "00" * 32 + '","0x' + "ab" * 32 + '",1]'
    assert entry_hash(GENESIS, "0x" + "ab" * 32, 1) == "0x" + hashlib.sha256(vector.encode()).hexdigest()
    assert entry_hash(GENESIS, "0x" + "ab" * 32, 1) == "0x5b3e02faa9217fd818057c822cc5b659ac4e42d21425d423c62929c4f4c17504"
    store.dispose()


def test_erasing_a_comments_text_keeps_the_chain_verifying(tmp_path):
    store = FeedbackStore.open(None, tmp_path)
    comment = store.append(
        checked_comment(Post(1, "my phone is 555-0100", False), BATCH, GTIN, "L", 1), batch_id=BATCH, gtin=GTIN
    )
    hide = {
        "kind": "hide",
        "target": comment.sequence,
        "batch_id": BATCH,
        "by": "0x" + "22" * 20,
        "at": 2,
        "reason": "personal data",
        "erased": True,
    }
    store.append(hide, batch_id=BATCH, gtin=GTIN, target=comment.sequence, erase=comment.sequence)
    stored = store.entry(comment.sequence)
    assert stored is not None and stored.content is None and stored.content_hash == comment.content_hash
    _, breaks = recompute(store.links())
    assert not breaks
    # Gone from the files too (SQLite's secure_delete, and the WAL checkpointed after an erase).
    assert b"555-0100" not in b"".join(p.read_bytes() for p in tmp_path.glob("feedback.sqlite*"))
    summary = summarise(threads(store.entries_of([BATCH])))
    assert summary.comments == 0 and summary.hidden == 1
    store.dispose()


def test_a_post_is_checked_before_anything_is_stored():
    with pytest.raises(FeedbackRefused) as refused:
        checked_comment(Post("6", "x" * 2001, False), BATCH, GTIN, "L", 1)
    assert set(refused.value.problems) == {"rating", "text"}
    with pytest.raises(FeedbackRefused):
        checked_comment(Post(None, "", True), BATCH, GTIN, "L", 1)
    assert checked_comment(Post("3", "  fine \r\n", False), BATCH, GTIN, "L", 1)["rating"] == 3
