"""Attacks on the one public write, as a hostile shopper or bot would try them: a body too
big to hold, a rate limit dodged by rotating IPv6 addresses or by a forged X-Forwarded-For,
markup in every text a page shows (comment, reply, reason, the form shown again), and a
lot's feedback shown on another lot's page."""

from __future__ import annotations

import json
import re
import socket
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from ledger.chain import free_loopback_port
from ledger.cli import app as cli
from ledger.cli.web import WebServer
from ledger.config import Settings
from ledger.demo import DEMO_BAG, DEMO_LOAF
from ledger.feedback.store import FeedbackStore
from ledger.feedback.verify import check_log
from ledger.identifiers import batch_id, digital_link

BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
BAG_PAGE = digital_link(*DEMO_BAG).path()
LOAF_ID = "0x" + batch_id(*DEMO_LOAF).hex()
LOAF_PAGE = digital_link(*DEMO_LOAF).path()
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def settings(site: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One post per client an hour (refused ones count), no fill time: a client's second post is a 429."""
    db = tmp_path_factory.mktemp("feedback-attacks") / "feedback.sqlite"
    return site.settings.model_copy(
        update={"feedback_database_url": f"sqlite:///{db}", "feedback_min_fill_seconds": 0, "feedback_posts_per_hour": 1}
    )


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[Any]:
    """The app with its lifespan running (the board set up); clients of any address use it."""
    application = create_app(settings)
    with TestClient(application):
        yield application


def shopper(app: Any, address: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def token_of(html: str) -> str:
    return re.search(r'name="token" value="([^"]*)"', html).group(1)


def post(client: TestClient, text: str, **headers: str) -> Any:
    token = token_of(client.get(BAG_PAGE).text)
    return client.post("/feedback", data={"batch_id": BAG_ID, "token": token, "text": text, "website": ""}, headers=headers)


def test_a_json_body_larger_than_a_post_is_refused_with_413(app):
    client = shopper(app, "198.51.100.7")
    big = b'{"batch_id": "' + BAG_ID.encode() + b'", "token": "1.2", "text": "' + b"a" * 2_000_000 + b'"}'
    declared = client.post("/api/v1/feedback", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
        yield b'{"batch_id": "' + BAG_ID.encode() + b'", "text": "'
        for _ in range(100):
            yield b"b" * 20_000
        yield b'"}'

    streamed = client.post("/api/v1/feedback", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text
    # A real post of the longest text, every character escaped, still fits.
    token = client.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["form_token"]
    longest = json.dumps({"batch_id": BAG_ID, "token": token, "text": "\u00e9" * 2000}, ensure_ascii=True).encode()
    assert len(longest) > 12_000  # 2,000 six-byte escapes
    accepted = client.post("/api/v1/feedback", content=longest, headers={"content-type": "application/json"})
    assert accepted.status_code == 201, accepted.text


def test_rotating_ipv6_addresses_within_a_64_does_not_escape_the_rate_limit(app):
    assert post(shopper(app, "2001:db8:5:6::1"), "first from this home").status_code == 303
    for suffix in ("2", "abcd:ef01:2345:6789"):  # same /64, another address each time
        again = post(shopper(app, f"2001:db8:5:6:{suffix}" if ":" in suffix else f"2001:db8:5:6::{suffix}"), f"again {suffix}")
        assert again.status_code == 429, again.text
    assert post(shopper(app, "2001:db8:5:7::1"), "another home").status_code == 303  # another /64 is another client


def test_markup_in_comments_replies_reasons_and_the_refused_form_stays_text(app, site, settings):
    client = shopper(app, "198.51.100.20")
    answer = post(client, "Question " + HOSTILE)
    assert answer.status_code == 303, answer.text
    number = answer.headers["location"].rsplit("-", 1)[1]
    supplier = client.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    maker = f"node:{site.connection.w3.eth.accounts.index(supplier)}"
    env = {"PROVENANCE_FEEDBACK_DATABASE_URL": settings.feedback_database_url}
    base = ["--data-dir", str(settings.data_dir), "--rpc-url", settings.rpc_url, "feedback"]
    assert CliRunner().invoke(cli, [*base, "reply", number, "Reply " + HOSTILE, "--account", maker], env=env).exit_code == 0
    page = client.get(BAG_PAGE).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(") >= 2  # the comment and the reply, as text
    hidden = CliRunner().invoke(cli, [*base, "hide", number, "--reason", "Reason " + HOSTILE[:60], "--account", maker], env=env)
    assert hidden.exit_code == 0, hidden.output
    page = client.get(BAG_PAGE).text
    assert "Reason &lt;script&gt;" in page and "<script>alert" not in page
    # The form shown again after a refusal keeps what was typed, as text in the textarea.
    refused = shopper(app, "198.51.100.21").post(
        "/feedback", data={"batch_id": BAG_ID, "token": "1.bad", "text": "</textarea>" + HOSTILE}
    )
    assert refused.status_code == 400
    assert "</textarea><script>" not in refused.text and "&lt;/textarea&gt;&lt;script&gt;" in refused.text


@pytest.mark.parametrize("sent_from", ["cross-site", "same-site"])
def test_a_form_another_site_makes_its_visitors_send_is_refused(app, sent_from):
    """A hostile page holds a hidden form with a public token and submits it from each
    visitor's browser: every post would come from another address, past the rate limit.
    Browsers say so (Sec-Fetch-Site); the post is refused and nothing is stored."""
    client = shopper(app, "198.51.100.61" if sent_from == "cross-site" else "198.51.100.62")
    before = client.get("/api/v1/feedback/log", params={"limit": 1}).json()["count"]
    token = client.get(f"/api/v1/batches/{BAG_ID}/feedback").json()["form_token"]
    data = {"batch_id": BAG_ID, "token": token, "text": f"Buy followers ({sent_from})", "website": ""}
    refused = client.post("/feedback", data=data, headers={"Sec-Fetch-Site": sent_from, "Origin": "https://evil.example"})
    assert refused.status_code == 400, refused.text
    assert client.get("/api/v1/feedback/log", params={"limit": 1}).json()["count"] == before
    # The visitor sees the lot's form (a fresh token) and may still post for real, from here.
    own = client.post("/feedback", data={**data, "token": token_of(refused.text)}, headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 303, own.text


def test_a_hidden_comment_can_still_be_erased_later_and_the_log_verifies(app, site, settings):
    """A careless maker hides a comment as rude, then learns it holds someone's phone number:
    the text must be erasable then too, not refused as "already hidden"."""
    client = shopper(app, "198.51.100.50")
    answer = post(client, "Rude, and call me on 555-0199")
    number = answer.headers["location"].rsplit("-", 1)[1]
    supplier = client.get(f"/api/v1/batches/{BAG_ID}").json()["supplier"]
    maker = f"node:{site.connection.w3.eth.accounts.index(supplier)}"
    env = {"PROVENANCE_FEEDBACK_DATABASE_URL": settings.feedback_database_url}
    base = ["--data-dir", str(settings.data_dir), "--rpc-url", settings.rpc_url, "feedback", "hide", number]
    assert CliRunner().invoke(cli, [*base, "--reason", "Rude", "--account", maker], env=env).exit_code == 0
    again = CliRunner().invoke(cli, [*base, "--reason", "Rude", "--account", maker], env=env)
    assert again.exit_code == 1 and "already hidden" in again.output  # a second plain hide is still refused
    erased = CliRunner().invoke(cli, [*base, "--reason", "Personal data", "--erase", "--account", maker], env=env)
    assert erased.exit_code == 0, erased.output
    store = FeedbackStore.open(settings.feedback_database_url, settings.data_dir)
    try:
        assert store.entry(int(number)).content is None
        entries = store.log(limit=100_000)
        assert check_log(entries, []).ok, check_log(entries, []).problems()
    finally:
        store.dispose()
    assert "555-0199" not in client.get(f"/feedback?batch_id={BAG_ID}").text
    assert "555-0199" not in json.dumps(client.get("/api/v1/feedback/log", params={"limit": 1000}).json())


def test_stacked_combining_marks_that_draw_over_the_page_are_refused_but_real_scripts_pass(app):
    zalgo = "H" + "\u0336\u0321\u0308\u033e\u034a\u0363\u0368\u0352" * 4 + "ello"
    refused = post(shopper(app, "198.51.100.70"), zalgo)
    assert refused.status_code == 400 and "control characters" in refused.text
    vietnamese_hebrew_thai = "Cà phê ngon quá. \u05e9\u05c1\u05b8\u05bc\u05dc\u05d5\u05b9\u05dd. กาแฟอร่อยมาก ผู้ที่"
    decomposed = unicodedata.normalize("NFD", vietnamese_hebrew_thai)
    for number, text in enumerate((vietnamese_hebrew_thai, decomposed)):
        accepted = post(shopper(app, f"198.51.100.{71 + number}"), f"{text} {number}")
        assert accepted.status_code == 303, accepted.text


@pytest.mark.parametrize(("number", "token"), list(enumerate(["²³.00", "١٢٣.00", "1" * 64, ".", "-1.x", "1e3.x"])))
def test_a_token_of_unicode_digits_or_junk_is_refused_with_400_not_a_crash(app, number, token):
    refused = shopper(app, f"198.51.100.{100 + number}").post(
        "/feedback", data={"batch_id": BAG_ID, "token": token, "text": "odd token"}
    )
    assert refused.status_code == 400 and "could not be checked" in refused.text
    as_json = shopper(app, f"198.51.100.{200 + number}").post(
        "/api/v1/feedback", json={"batch_id": BAG_ID, "token": token, "text": "odd token"}
    )
    assert as_json.status_code == 400, as_json.text


def test_one_lots_feedback_never_shows_on_another_lots_page(app):
    client = shopper(app, "198.51.100.30")
    assert post(client, "Only about the bag").status_code == 303
    assert "Only about the bag" in client.get(BAG_PAGE).text
    loaf = client.get(LOAF_PAGE)  # the same app, the same minute: its own section
    assert loaf.status_code == 200 and "Only about the bag" not in loaf.text
    assert client.get(f"/api/v1/batches/{LOAF_ID}/feedback").json()["comments"] == []


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The app as `provenance serve` runs it (no FORWARDED_ALLOW_IPS: X-Forwarded-For is not trusted)."""
    port = free_loopback_port()
    db = tmp_path_factory.mktemp("feedback-served") / "feedback.sqlite"
    served = settings.model_copy(
        update={"public_base_url": f"http://127.0.0.1:{port}", "feedback_database_url": f"sqlite:///{db}"}
    )
    web = WebServer(served, "127.0.0.1", port, workers=1)
    web.start()
    try:
        yield web
    finally:
        web.stop()


def served_post(server: WebServer, text: str, forwarded: str | None = None) -> int:
    token = token_of(urllib.request.urlopen(server.url + BAG_PAGE).read().decode())
    body = urllib.parse.urlencode({"batch_id": BAG_ID, "token": token, "text": text, "website": ""}).encode()
    request = urllib.request.Request(server.url + "/feedback", data=body)
    if forwarded:
        request.add_header("X-Forwarded-For", forwarded)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(request).status
    except urllib.error.HTTPError as answer:
        return answer.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_a_forged_x_forwarded_for_does_not_buy_a_new_rate_limit(server):
    assert served_post(server, "first from loopback") == 303
    assert served_post(server, "second, as someone else", forwarded="203.0.113.99") == 429


def test_a_declared_gigabyte_is_refused_before_the_server_waits_for_it(server):
    """The attacker announces 1 GB and sends nothing: the answer must not wait for the body."""
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as connection:
        connection.sendall(
            b"POST /api/v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        connection.settimeout(5)
        started = time.monotonic()
        try:
            status = connection.recv(64).split(b" ")[1]
        except TimeoutError:
            status = b"no answer"
    assert status == b"413", status
    assert time.monotonic() - started < 5


def test_nothing_of_the_attackers_reaches_the_servers_log(server):
    log = Path(server.log_file).read_bytes() if Path(server.log_file).exists() else b""
    assert b"203.0.113.99" not in log and b"127.0.0.1:" not in log.replace(server.url.encode(), b"")


def test_a_real_browser_posting_another_sites_form_is_refused(browser, live_server):
    """Chromium itself, on a page of another origin holding a form with a public token."""

    def stored() -> int:
        return json.load(urllib.request.urlopen(live_server + "/api/v1/feedback/log?limit=1"))["count"]

    token = json.load(urllib.request.urlopen(f"{live_server}/api/v1/batches/{BAG_ID}/feedback"))["form_token"]
    before = stored()
    time.sleep(3.2)  # the server's default minimum fill time
    hostile = (
        f'<form method="post" action="{live_server}/feedback"><input name="batch_id" value="{BAG_ID}">'
        f'<input name="token" value="{token}"><input name="text" value="Posted for another site">'
        "<button>Win a prize</button></form>"
    )
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto("data:text/html," + urllib.parse.quote(hostile))
    with page.expect_navigation():
        page.get_by_role("button", name="Win a prize").click()
    shown = page.content()
    context.close()
    assert "could not be checked" in shown and stored() == before


def fake_anchors(w3: Any, deployer: str) -> str:
    """A contract (hand-assembled EVM) that emits Anchors' event naming any `by` it is given:
    calldata (by, head, count) -> Anchored(by, head, count)."""
    topic = bytes(w3.keccak(text="Anchored(address,bytes32,uint64)"))
    runtime = (
        bytes.fromhex("60406020600037600035")  # CALLDATACOPY(0, 32, 64); CALLDATALOAD(0) -> by
        + b"\x7f"
        + topic  # PUSH32 topic0
        + bytes.fromhex("60406000a200")  # LOG2(0, 64, topic0, by); STOP
    )
    init = bytes([0x60, len(runtime), 0x60, 12, 0x60, 0, 0x39, 0x60, len(runtime), 0x60, 0, 0xF3]) + runtime
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": deployer, "data": "0x" + init.hex()}))
    return receipt["contractAddress"]


def test_anchors_forged_by_another_contract_do_not_vouch_for_a_rewritten_log(site, tmp_path):
    """Whoever can rewrite the log and the deployment record's Anchors address points verify
    at a contract of theirs, whose events name the real anchoring account."""
    from eth_abi import encode
    from eth_account import Account

    from ledger.errors import LedgerError
    from ledger.feedback.anchoring import AnchorsAt, anchored_heads
    from ledger.feedback.entries import Post, checked_comment

    w3 = site.connection.w3
    anchorer = Account.create().address  # the server's anchoring account: it never sent these
    attacker = w3.eth.accounts[7]
    store = FeedbackStore.open(None, tmp_path)
    try:
        for text in ("rewritten praise", "more rewritten praise"):
            store.append(
                checked_comment(Post(5, text, False), BAG_ID, DEMO_BAG[0], DEMO_BAG[1], 1), batch_id=BAG_ID, gtin=DEMO_BAG[0]
            )
        head = store.head()
        entries = store.log(limit=100)
    finally:
        store.dispose()
    fake = fake_anchors(w3, attacker)
    calldata = encode(["address", "bytes32", "uint64"], [anchorer, bytes.fromhex(head.hash[2:]), head.count])
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": attacker, "to": fake, "data": "0x" + calldata.hex()}))
    with pytest.raises(LedgerError, match="was sent by"):
        forged = anchored_heads(w3, AnchorsAt(fake, 0), anchorer)
        assert not check_log(entries, forged).ok, "the forged anchor vouched for the rewritten log"
