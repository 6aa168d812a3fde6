"""The feedback log against the chain: anchor its head (one Anchors event), verify it, then
remove, edit or rewrite it in the database behind the app's back: `provenance feedback
verify` must notice, say where (which entry, which anchor and transaction) and exit 1."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from ledger.cli import app as cli
from ledger.config import Settings
from ledger.demo import DEMO_BAG
from ledger.feedback.anchoring import Anchorer, anchored_heads, anchors_at
from ledger.feedback.chain import content_hash, entry_hash
from ledger.feedback.signing import sign
from ledger.feedback.store import FeedbackStore
from ledger.identifiers import batch_id, digital_link
from ledger.signers import NodeAccountSigner

BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
BAG_PAGE = digital_link(*DEMO_BAG).path()


@pytest.fixture
def anchor_key(monkeypatch: pytest.MonkeyPatch) -> LocalAccount:
    """Each test anchors with a key of its own (PROVENANCE_PRIVATE_KEY, no funds needed on the
    zero-fee local chain): one account anchors one log, and each test has its own log."""
    account = Account.create()
    monkeypatch.setenv("PROVENANCE_PRIVATE_KEY", account.key.hex())
    return account


@pytest.fixture
def settings(site: Any, tmp_path: Path, anchor_key: LocalAccount) -> Settings:
    return site.settings.model_copy(
        update={"feedback_database_url": f"sqlite:///{tmp_path / 'feedback.sqlite'}", "feedback_min_fill_seconds": 0}
    )


@pytest.fixture
def shop(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def post(shop: TestClient, text: str, rating: int | None = None) -> int:
    page = shop.get(BAG_PAGE).text
    token = re.search(r'name="token" value="([^"]*)"', page).group(1)
    answer = shop.post("/feedback", data={"batch_id": BAG_ID, "token": token, "text": text, "rating": str(rating or "")})
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("-", 1)[1])


def cli_run(settings: Settings, *args: str) -> Any:
    env = {"PROVENANCE_FEEDBACK_DATABASE_URL": settings.feedback_database_url}
    base = ["--data-dir", str(settings.data_dir), "--rpc-url", settings.rpc_url]
    return CliRunner().invoke(cli, [*base, "feedback", *args], env=env)


def database(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.feedback_database_url.removeprefix("sqlite:///"))


def anchored(settings: Settings, site: Any, by: str) -> int:
    return len(anchored_heads(site.connection.w3, anchors_at(settings, settings.chain_id), by))


def test_a_comment_deleted_behind_the_apps_back_is_found_by_verify(shop, settings, site, anchor_key):
    first = post(shop, "one", 5)
    second = post(shop, "two (to be deleted)", 1)
    supplier = shop.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    maker = f"node:{site.connection.w3.eth.accounts.index(supplier)}"
    assert cli_run(settings, "reply", str(first), "Thank you!", "--account", maker).exit_code == 0  # signed by the node
    third = post(shop, "three", 4)
    assert anchored(settings, site, anchor_key.address) == 0
    # Nothing anchored yet: verify says the entries are not protected, not that all is proven.
    bare = json.loads(cli_run(settings, "verify", "--json").output)
    assert bare["unanchored_entries"] == third and "not covered by any anchor" in bare["warning"]
    anchor = cli_run(settings, "anchor", "--json")
    assert anchor.exit_code == 0, anchor.output
    record = json.loads(anchor.output)
    assert record["count"] == third and anchored(settings, site, anchor_key.address) == 1
    ok = cli_run(settings, "verify")
    assert ok.exit_code == 0, ok.output
    assert "The feedback log verifies." in ok.output and "WARNING" not in ok.output

    with database(settings) as db:
        db.execute("DELETE FROM feedback_entries WHERE sequence = ?", (second,))
    broken = cli_run(settings, "verify", "--json")
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.output)
    assert report["ok"] is False
    problems = "\n".join(report["problems"])
    assert f"entry {second} is missing from the log" in problems
    assert record["tx_hash"] in problems and f"anchor of entry {third}" in problems


def test_an_edited_comment_and_a_rewritten_log_are_found(shop, settings, site):
    first = post(shop, "The beans were fine", 4)
    second = post(shop, "Nice bag", 5)
    assert cli_run(settings, "anchor").exit_code == 0

    # An edit that keeps the hashes: the content no longer hashes to its content hash.
    with database(settings) as db:
        row = db.execute("SELECT content FROM feedback_entries WHERE sequence = ?", (first,)).fetchone()
        edited = json.loads(row[0]) | {"text": "The beans were awful"}
        db.execute("UPDATE feedback_entries SET content = ? WHERE sequence = ?", (json.dumps(edited), first))
    found = cli_run(settings, "verify", "--json")
    assert found.exit_code == 1
    assert f"entry {first}'s content was changed" in "\n".join(json.loads(found.output)["problems"])

    # A rewrite that recomputes every hash agrees with itself, but not with the anchor.
    with database(settings) as db:
        previous = "0x" + "00" * 32
        for sequence, content in db.execute("SELECT sequence, content FROM feedback_entries ORDER BY sequence").fetchall():
            digest = content_hash(json.loads(content))
            previous = entry_hash(previous, digest, sequence)
            db.execute(
                "UPDATE feedback_entries SET content_hash = ?, entry_hash = ? WHERE sequence = ?", (digest, previous, sequence)
            )
    rewritten = cli_run(settings, "verify", "--json")
    assert rewritten.exit_code == 1, rewritten.output
    problems = json.loads(rewritten.output)["problems"]
    assert len(problems) == 1 and "does not reproduce the anchored head" in problems[0] and f"entry {second}" in problems[0]


def test_a_reply_signed_by_someone_else_than_the_maker_is_reported(shop, settings, site):
    number = post(shop, "Who answers?")
    w3 = site.connection.w3
    supplier = shop.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    stranger = next(a for a in w3.eth.accounts[1:] if a != supplier)
    content = {
        "kind": "reply",
        "target": number,
        "batch_id": BAG_ID,
        "by": stranger,
        "at": int(time.time()),
        "chain_id": 31337,
        "text": "forged",
    }
    store = FeedbackStore.open(settings.feedback_database_url, settings.data_dir)
    store.append(sign(NodeAccountSigner(stranger), w3, content), batch_id=BAG_ID, gtin=DEMO_BAG[0], target=number)
    # And one whose signature is not its `by`'s at all.
    claimed = {**content, "by": supplier, "text": "claims to be the maker"}
    store.append(sign(NodeAccountSigner(stranger), w3, claimed), batch_id=BAG_ID, gtin=DEMO_BAG[0], target=number)
    store.dispose()
    report = cli_run(settings, "verify", "--json")
    assert report.exit_code == 1
    problems = "\n".join(json.loads(report.output)["problems"])
    assert "neither the lot's supplier nor the ledger's admin" in problems
    assert f"is not signed by {supplier}" in problems


def test_the_server_anchors_when_enough_entries_were_added(shop, settings, site, anchor_key):
    due_after_two = settings.model_copy(update={"feedback_anchor_entries": 2, "feedback_anchor_minutes": 0})
    anchorer = Anchorer(due_after_two, site.connection.w3, notice=lambda line: None)
    post(shop, "first of two")
    assert anchorer.anchor_if_due() is None
    post(shop, "second of two")
    record = anchorer.anchor_if_due()
    assert record is not None and record.count == anchorer.store.head().count
    assert anchorer.anchor_if_due() is None  # the head did not move
    heads = anchored_heads(site.connection.w3, anchorer.where, anchor_key.address)
    assert heads[-1].head == record.head and heads[-1].count == record.count
    anchorer.store.dispose()
