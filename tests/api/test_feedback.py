"""Shoppers' feedback on a lot's page: posted by a plain form or JSON, refused by each spam
check with a sentence saying what to fix (and the text kept), rate-limited, answered and
hidden by the maker through the CLI (and by nobody else), shown at once, escaped, and with
nothing personal stored."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.feedback_view import PAGE_COMMENTS
from api.main import create_app
from ledger.chain import free_loopback_port
from ledger.cli import app as cli
from ledger.cli.web import WebServer
from ledger.config import Settings
from ledger.demo import DEMO_BAG
from ledger.identifiers import batch_id, digital_link

BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
BAG_PAGE = digital_link(*DEMO_BAG).path()
FILL_SECONDS = 0.4


@pytest.fixture(scope="module")
def feedback_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's feedback store (the demo site's index and chain are shared)."""
    return tmp_path_factory.mktemp("feedback") / "feedback.sqlite"


@pytest.fixture(scope="module")
def settings(site: Any, feedback_db: Path) -> Settings:
    return site.settings.model_copy(
        update={
            "feedback_database_url": f"sqlite:///{feedback_db}",
            "feedback_min_fill_seconds": FILL_SECONDS,
            "feedback_posts_per_hour": 1000,
        }
    )


@pytest.fixture(scope="module")
def shop(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def form_of(html: str) -> dict[str, str]:
    """The hidden fields of the page's feedback form."""
    return {
        "batch_id": re.search(r'name="batch_id" value="([^"]*)"', html).group(1),
        "token": re.search(r'name="token" value="([^"]*)"', html).group(1),
    }


def post_form(shop: TestClient, wait: bool = True, page: str = BAG_PAGE, **fields: str) -> Any:
    """Open the lot's page, fill its form in like a person (after the fill time), send it."""
    hidden = form_of(shop.get(page).text)
    if wait:
        time.sleep(FILL_SECONDS + 0.1)
    return shop.post("/feedback", data={**hidden, "website": "", **fields})


def cli_run(settings: Settings, *args: str) -> Any:
    env = {"PROVENANCE_FEEDBACK_DATABASE_URL": settings.feedback_database_url}
    base = ["--data-dir", str(settings.data_dir), "--rpc-url", settings.rpc_url]
    return CliRunner().invoke(cli, [*base, "feedback", *args], env=env)


def node_of(site: Any, address: str) -> str:
    return f"node:{site.connection.w3.eth.accounts.index(address)}"


def test_a_form_post_is_answered_with_303_and_shows_on_the_page_at_once(shop):
    answer = post_form(shop, rating="4", text="Lovely <b>chocolate</b> notes\nsecond line", question="")
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(BAG_PAGE + "#comment-")
    page = shop.get(BAG_PAGE).text
    number = location.rsplit("-", 1)[1]
    assert f'id="comment-{number}"' in page
    # Escaped, never markup: the shopper's text is text.
    assert "Lovely &lt;b&gt;chocolate&lt;/b&gt; notes" in page and "<b>chocolate</b>" not in page
    assert "4 stars" in page


def test_a_json_post_needs_the_token_and_lands_in_the_summaries(shop):
    before = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()
    token = before["form_token"]
    time.sleep(FILL_SECONDS + 0.1)
    answer = shop.post(
        "/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "rating": 2, "text": "Is it decaf?", "question": True}
    )
    assert answer.status_code == 201, answer.text
    posted = answer.json()
    assert posted["entry_hash"].startswith("0x") and posted["page"].startswith(BAG_PAGE)
    after = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()
    assert after["summary"]["ratings"] == before["summary"]["ratings"] + 1
    assert after["summary"]["questions"] == before["summary"]["questions"] + 1
    assert after["comments"][-1]["text"] == "Is it decaf?" and after["comments"][-1]["question"] is True
    product = shop.get(f"/api/v1/products/{DEMO_BAG[0]}/feedback").json()
    assert product["summary"]["ratings"] >= after["summary"]["ratings"]
    assert "form_token" not in product
    log = shop.get("/api/v1/feedback/log").json()
    assert log["count"] == len(log["entries"]) and log["entries"][-1]["entry_hash"] == log["head"] == posted["entry_hash"]


@pytest.mark.parametrize(
    ("fields", "wait", "sentence"),
    [
        ({"website": "http://spam.example", "text": "honeypot filled"}, True, "Leave this empty"),
        ({"text": "sent at once by a bot", "page": "form"}, False, "That was very quick"),
        ({"token": "1700000000.00000000000000000000000000000000", "text": "forged token"}, True, "could not be checked"),
        ({"text": "x" * 2001}, True, "please keep it to 2,000"),
        ({"text": "cheap pills http://a.example and http://b.example"}, True, "please leave links out"),
        ({"text": "hidden\u202etext"}, True, "invisible control characters"),
        ({"text": "bell\x07"}, True, "invisible control characters"),
        ({"rating": "9", "text": "nine stars"}, True, "from 1 to 5"),
        ({"rating": "", "text": "   "}, True, "choose a rating or write a comment"),
    ],
    ids=["honeypot", "too-fast", "forged-token", "too-long", "links", "bidi", "control", "rating", "empty"],
)
def test_each_spam_check_refuses_with_what_to_fix_and_keeps_the_text(shop, fields, wait, sentence):
    # The form on a page of its own has a token of this request (the lot's page: of its section's build).
    fields = dict(fields)
    source = f"/feedback?batch_id={BAG_ID}" if fields.pop("page", None) == "form" else BAG_PAGE
    hidden = form_of(shop.get(source).text)
    if wait:
        time.sleep(FILL_SECONDS + 0.1)
    before = shop.get("/api/v1/feedback/log").json()["count"]
    answer = shop.post("/feedback", data={**hidden, "website": "", **fields})
    assert answer.status_code == 400, answer.text
    assert sentence in answer.text.replace("&#39;", "'")
    assert 'role="alert"' in answer.text
    typed = fields.get("text", "").strip()
    if typed and len(typed) < 100 and "\x07" not in typed:
        assert typed.replace("<", "&lt;") in answer.text  # what the shopper typed is still there
    assert shop.get("/api/v1/feedback/log").json()["count"] == before


def test_a_token_for_another_lot_is_refused(shop, site):
    other = shop.get("/api/v1/batches", params={"limit": 5}).json()["items"]
    other_id = next(b["batch_id"] for b in other if b["batch_id"] != BAG_ID)
    token = shop.get(f"/api/v1/batches/{other_id}/feedback").json()["form_token"]
    time.sleep(FILL_SECONDS + 0.1)
    answer = shop.post("/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "rating": 5})
    assert answer.status_code == 400 and "could not be checked" in answer.json()["detail"]


def test_the_same_text_twice_on_a_lot_is_refused(shop):
    assert post_form(shop, text="Arrived   fresh!").status_code == 303
    again = post_form(shop, text="arrived fresh!")
    assert again.status_code == 400 and "exactly this text" in again.text


def test_a_client_posting_too_often_gets_429_with_retry_after(settings):
    limited = settings.model_copy(update={"feedback_posts_per_hour": 2})
    with TestClient(create_app(limited), follow_redirects=False) as shop:
        assert post_form(shop, rating="5").status_code == 303
        assert post_form(shop, rating="4").status_code == 303
        third = post_form(shop, rating="3")
        assert third.status_code == 429
        assert 0 < int(third.headers["retry-after"]) <= 3600
        assert "try again in" in third.text
        token = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["form_token"]
        as_json = shop.post("/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "rating": 1})
        assert as_json.status_code == 429 and "retry-after" in as_json.headers


def test_nothing_personal_is_stored(shop, feedback_db):
    assert post_form(shop, rating="5", text="No trace of me").status_code == 303
    stored = b"".join(path.read_bytes() for path in feedback_db.parent.glob("feedback.sqlite*"))
    assert b"No trace of me" in stored  # the right file was read
    for personal in (b"testclient", b"127.0.0.1", b"python-httpx", b"user-agent", b"User-Agent"):
        assert personal not in stored, personal


def test_the_maker_replies_and_hides_through_the_cli_and_the_page_shows_a_tombstone(shop, site, settings):
    answer = post_form(shop, rating="1", text="Where was this grown? Rude words here.", question="1")
    number = answer.headers["location"].rsplit("-", 1)[1]
    supplier = shop.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    maker = node_of(site, supplier)

    replied = cli_run(settings, "reply", number, "In Huila, Colombia: see the journey above.", "--account", maker)
    assert replied.exit_code == 0, replied.output
    page = shop.get(BAG_PAGE).text
    assert "In Huila, Colombia: see the journey above." in page and "Answer from Tostadores del Puerto" in page
    lot = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()
    assert lot["summary"]["questions_answered"] >= 1

    rated = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["summary"]
    hidden = cli_run(settings, "hide", number, "--reason", "Offensive language", "--account", maker)
    assert hidden.exit_code == 0, hidden.output
    page = shop.get(BAG_PAGE).text
    # Hiding a one-star comment does not lift the lot's rating: it still counts, and the page says so.
    after = shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["summary"]
    assert (after["ratings"], after["average_rating"], after["distribution"]) == (
        rated["ratings"],
        rated["average_rating"],
        rated["distribution"],
    )
    assert after["hidden"] == rated["hidden"] + 1 and re.search(r"\d+ comments? (was|were) hidden by the maker", page)
    assert re.search(r"A comment was hidden by Tostadores del Puerto on \d+ \w+ \d{4}: Offensive language", page)
    assert "Rude words here." not in page
    shown = next(c for c in shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["comments"] if c["sequence"] == int(number))
    assert shown["text"] is None and shown["hidden"]["reason"] == "Offensive language" and shown["replies"]
    # Hidden, not deleted: the log still holds it (only --erase blanks the text; its hash stays).
    log = shop.get("/api/v1/feedback/log").json()["entries"]
    assert any(e["sequence"] == int(number) and e["content"]["text"].endswith("Rude words here.") for e in log)
    again = cli_run(settings, "hide", number, "--reason", "twice", "--account", maker)
    assert again.exit_code == 1 and "already hidden" in again.output


def test_only_the_lots_maker_may_reply_or_hide(shop, site, settings):
    number = post_form(shop, text="Who may answer me?").headers["location"].rsplit("-", 1)[1]
    supplier = shop.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    accounts = site.connection.w3.eth.accounts
    stranger = next(f"node:{i}" for i, a in enumerate(accounts) if i not in (0,) and a != supplier)
    for args in (["reply", number, "I am not the maker"], ["hide", number, "--reason", "not mine"]):
        refused = cli_run(settings, *args, "--account", stranger)
        assert refused.exit_code == 1 and "only the lot's supplier" in refused.output, refused.output
    assert "I am not the maker" not in shop.get(BAG_PAGE).text
    admin = cli_run(settings, "reply", number, "The ledger's admin answers too.", "--account", "node:0")
    assert admin.exit_code == 0, admin.output


def test_the_form_page_of_its_own_and_unknown_lots(shop):
    page = shop.get("/feedback", params={"batch_id": BAG_ID})
    assert page.status_code == 200 and re.search(r'name="token" value="\d{13}\.[0-9a-f]{32}"', page.text)
    assert shop.get("/feedback", params={"batch_id": "0x" + "ab" * 32}).status_code == 404
    hidden = form_of(shop.get(BAG_PAGE).text)
    time.sleep(FILL_SECONDS + 0.1)
    unknown = shop.post("/feedback", data={**hidden, "batch_id": "0x" + "ab" * 32, "rating": "5"})
    assert unknown.status_code == 404


def test_the_page_stays_cached_until_the_log_moves(shop):
    first = shop.get(BAG_PAGE).text
    assert shop.get(BAG_PAGE).text == first  # byte for byte: the section is cached with the page
    assert "<!--feedback-section-->" not in first and 'id="feedback"' in first
    assert post_form(shop, rating="3", text="Changes the page at once").status_code == 303
    after = shop.get(BAG_PAGE).text
    assert after != first and "Changes the page at once" in after


def test_the_cli_lists_a_lots_comments_with_their_numbers(shop, settings):
    number = post_form(shop, rating="5", text="Listed by the CLI").headers["location"].rsplit("-", 1)[1]
    listed = cli_run(settings, "list", *DEMO_BAG, "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert any(c["sequence"] == int(number) and c["text"] == "Listed by the CLI" for c in data["comments"])
    assert data["summary"]["comments"] == len([c for c in data["comments"] if not c["hidden"]])
    product = json.loads(cli_run(settings, "list", DEMO_BAG[0], "--json").output)
    assert len(product["comments"]) >= len(data["comments"])


def test_the_page_shows_the_latest_comments_and_links_to_all(shop):
    numbers = [post_form(shop, text=f"Batch of comments, number {i}").headers["location"].rsplit("-", 1)[1] for i in range(11)]
    page = shop.get(BAG_PAGE).text
    assert f'id="comment-{numbers[-1]}"' in page and f'id="comment-{numbers[0]}"' not in page
    assert page.index(f'id="comment-{numbers[-1]}"') < page.index(f'id="comment-{numbers[-2]}"')  # newest first
    link = re.search(r'href="(/feedback\?batch_id=0x[0-9a-f]{64})#comments">See all (\d+) older comments', page)
    assert link is not None
    every = shop.get(link.group(1)).text
    assert all(f'id="comment-{n}"' in every for n in numbers)
    assert len(page.encode()) < 60_000


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_the_latest_comments_of_the_longest_kind_keep_the_page_under_60_kb(shop, language):
    words = ["rich", "dark", "chocolate", "notes", "with", "a", "long", "finish", "and", "hints", "of", "plum"]
    for i in range(PAGE_COMMENTS + 1 if language == "en" else 0):
        text = " ".join(f"{words[(i + k) % len(words)]}{k}" for k in range(400))[:2000]  # distinct, 2,000 characters
        assert post_form(shop, text=text, rating="3").status_code == 303
    page = shop.get(BAG_PAGE, params={"lang": language}).text
    shown = re.findall(r'<p class="comment-text">([^<]*)</p>', page)
    assert len(shown) == PAGE_COMMENTS and all(len(t) <= 301 for t in shown)
    cut = re.search(r'href="(/feedback\?batch_id=0x[0-9a-f]{64}#comment-(\d+))"', page)
    assert cut is not None and f'id="comment-{cut.group(2)}"' in shop.get(cut.group(1)).text
    shop.cookies.clear()  # ?lang= is remembered in a cookie: later tests expect English
    assert len(page.encode()) < 60_000, f"{len(page.encode()):,} bytes"


def test_a_post_shows_at_once_on_every_worker(settings, tmp_path):
    """Two uvicorn workers, each with its page cache: whichever answers next shows the post."""
    port = free_loopback_port()
    served = settings.model_copy(
        update={"public_base_url": f"http://127.0.0.1:{port}", "feedback_database_url": f"sqlite:///{tmp_path / 'fb.sqlite'}"}
    )
    server = WebServer(served, "127.0.0.1", port, workers=2)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        server.start()
        for _ in range(20):  # both workers build and cache the page
            urllib.request.urlopen(server.url + BAG_PAGE).read()
        hidden = form_of(urllib.request.urlopen(server.url + BAG_PAGE).read().decode())
        time.sleep(FILL_SECONDS + 0.1)
        body = urllib.parse.urlencode({**hidden, "website": "", "text": "Seen by every worker"}).encode()
        try:
            opener.open(server.url + "/feedback", data=body)
        except urllib.error.HTTPError as answer:
            assert answer.code == 303, answer.read()
        for _ in range(20):
            assert "Seen by every worker" in urllib.request.urlopen(server.url + BAG_PAGE).read().decode()
    finally:
        server.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_feedback_api_answers_what_its_models_say(shop):
    from test_openapi import check

    from api import schemas

    token = check(schemas.Feedback, shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json()).form_token
    time.sleep(FILL_SECONDS + 0.1)
    posted = shop.post(
        "/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "rating": 4, "text": "Checked against the models"}
    )
    check(schemas.FeedbackPosted, posted.json())
    lot = check(schemas.Feedback, shop.get(f"/api/v1/batches/{BAG_ID}/feedback").json())
    assert any(c.hidden for c in lot.comments) and any(c.replies for c in lot.comments)  # tombstones and replies too
    check(schemas.Feedback, shop.get(f"/api/v1/products/{DEMO_BAG[0]}/feedback").json())
    log = check(schemas.FeedbackLog, shop.get("/api/v1/feedback/log", params={"limit": 3}).json())
    assert len(log.entries) == 3 and log.next_after == 3
    refused = shop.post("/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "rating": 4, "website": "x"})
    assert refused.status_code == 400
    check(schemas.Problem, refused.json())
    assert shop.get("/api/v1/products/123/feedback").status_code == 400
    assert shop.get(f"/api/v1/batches/0x{'ab' * 32}/feedback").status_code == 404


def test_an_oversized_form_is_refused_without_reading_it_all(shop):
    hidden = form_of(shop.get(BAG_PAGE).text)
    answer = shop.post("/feedback", data={**hidden, "text": "y" * 100_000})
    assert answer.status_code == 400 and "far too long" in answer.text
