"""Hostile document sources and publish_to servers: each test performs one attack on the
fetching or pushing of documents (no chain needed: every answer is checked by hash)."""

from __future__ import annotations

import base64
import email.message
import hashlib
import http.server
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.chain import free_loopback_port
from ledger.cid import cid_of_digest
from ledger.cli import app
from ledger.documents import DocumentStore
from ledger.publishing import Outbox
from ledger.sources import FetchingDocumentStore, _SameSiteRedirects, authenticated_request, fetch_verified, redact

DOCUMENT = b'{"gtin":"09506000134352","lot":"L-1","product":"Green coffee"}'
DIGEST = hashlib.sha256(DOCUMENT).digest()
SECRET = "s3cret-pa55"


class Recorder(http.server.BaseHTTPRequestHandler):
    """A source whose every GET runs `answer(handler)`; remembers paths and headers."""

    answer: Callable[[Recorder], None]
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        type(self).answer(self)

    def log_message(self, *args: object) -> None:
        pass


def _send(handler: Recorder, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Recorder], None]], tuple[str, type[Recorder]]]]:
    servers: list[http.server.HTTPServer] = []

    def start(answer: Callable[[Recorder], None]) -> tuple[str, type[Recorder]]:
        handler = type("Source", (Recorder,), {"answer": staticmethod(answer), "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_source_that_trickles_is_dropped_at_the_deadline(serve) -> None:  # type: ignore[no-untyped-def]
    def trickle(handler: Recorder) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(1000):  # one byte every 0.2 s: never a socket timeout, never done
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    url, _ = serve(trickle)
    started = time.monotonic()
    assert fetch_verified([url], DIGEST, timeout=1.0, deadline_seconds=1.5) is None
    assert time.monotonic() - started < 4


def test_a_source_sending_gigabytes_is_read_no_further_than_the_limit(serve) -> None:  # type: ignore[no-untyped-def]
    sent = [0]

    def flood(handler: Recorder) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 << 30))  # 10 GB announced
        handler.end_headers()
        chunk = b"\0" * (1 << 20)
        try:
            for _ in range(10 << 10):
                handler.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    url, _ = serve(flood)
    assert fetch_verified([url], DIGEST, max_bytes=4 << 20) is None
    time.sleep(0.5)
    assert sent[0] < 64 << 20  # the reader hung up soon after 4 MB (socket buffers aside)


def test_a_redirect_to_a_file_or_another_host_is_not_followed(serve) -> None:  # type: ignore[no-untyped-def]
    elsewhere, other = serve(lambda h: _send(h, DOCUMENT))  # holds the right bytes: a redirect there would "work"
    port = elsewhere.rsplit(":", 1)[1]
    to_file, _ = serve(lambda h: _send(h, b"", 302, Location="file:///etc/passwd"))
    to_other_host, _ = serve(lambda h: _send(h, b"", 302, Location=f"http://localhost:{port}/api/v1/documents/{DIGEST.hex()}"))
    to_metadata_service, _ = serve(lambda h: _send(h, b"", 307, Location="http://169.254.169.254/latest/meta-data/"))
    for source in (to_file, to_other_host, to_metadata_service):
        assert fetch_verified([source], DIGEST, timeout=1.0) is None
    assert other.seen == []
    # The same host is fine (a gateway normalising its path).
    same_host, recorder = serve(
        lambda h: _send(h, DOCUMENT) if h.path.endswith("/") else _send(h, b"", 301, Location=h.path + "/")
    )
    assert fetch_verified([same_host + "/ipfs"], DIGEST) == DOCUMENT
    assert [path for path, _ in recorder.seen] == [f"/ipfs/{cid_of_digest(DIGEST)}", f"/ipfs/{cid_of_digest(DIGEST)}/"]


def test_an_ipfs_gateway_returning_another_document_is_skipped(serve) -> None:  # type: ignore[no-untyped-def]
    liar, _ = serve(lambda h: _send(h, DOCUMENT.replace(b"Green", b"Fake!")))
    honest, _ = serve(lambda h: _send(h, DOCUMENT))
    assert fetch_verified([liar + "/ipfs"], DIGEST) is None
    assert fetch_verified([liar + "/ipfs", honest + "/ipfs"], DIGEST) == DOCUMENT


def test_credentials_in_a_source_url_are_sent_as_basic_auth_and_never_shown(serve) -> None:  # type: ignore[no-untyped-def]
    expected = "Basic " + base64.b64encode(f"reader:{SECRET}".encode()).decode()
    url, recorder = serve(lambda h: _send(h, DOCUMENT) if h.headers.get("Authorization") == expected else _send(h, b"{}", 401))
    with_credentials = url.replace("http://", f"http://reader:{SECRET}@")
    assert fetch_verified([with_credentials], DIGEST) == DOCUMENT
    assert recorder.seen[0][1] == expected
    assert SECRET not in redact(with_credentials) and redact(with_credentials).startswith("http://reader:***@127.0.0.1:")


def test_credentials_in_a_publish_to_url_never_reach_the_queue_or_messages(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents")
    digest = store.put_bytes(DOCUMENT)
    closed = f"http://writer:{SECRET}@127.0.0.1:{free_loopback_port()}"  # nobody listens: the push fails
    box = Outbox(tmp_path, store, [closed])
    box.enqueue([digest])
    report = box.push()
    assert report.pending == {closed: 1}
    assert "cannot be reached" in report.errors[closed] and SECRET not in report.errors[closed]
    assert SECRET not in (tmp_path / "outbox" / f"{digest.hex()}.json").read_text()
    assert box.last_errors() and SECRET not in json.dumps(list(box.last_errors().values()))
    env = {"PROVENANCE_DATA_DIR": str(tmp_path), "PROVENANCE_PUBLISH_TO": closed}
    for command in (
        ["documents", "status"],
        ["documents", "status", "--json"],
        ["documents", "push"],
        ["documents", "push", "--json"],
    ):
        result = CliRunner().invoke(app, command, env=env, catch_exceptions=False)
        assert "cannot be reached" in result.stdout + result.stderr, result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr


def test_a_redirect_to_another_port_of_the_same_host_never_gets_the_credentials(serve) -> None:  # type: ignore[no-untyped-def]
    # An internal service on the source's host (another port) holds the right bytes.
    internal, inside = serve(lambda h: _send(h, DOCUMENT))
    source, _ = serve(lambda h: _send(h, b"", 302, Location=f"{internal}/api/v1/documents/{DIGEST.hex()}"))
    assert fetch_verified([source.replace("http://", f"http://reader:{SECRET}@")], DIGEST, timeout=1.0) is None
    assert inside.seen == []


def test_a_redirect_keeps_the_scheme_or_upgrades_it_and_drops_credentials_on_any_change() -> None:
    def redirect(source: str, target: str) -> urllib.request.Request | None:
        request = authenticated_request(source)
        handler = _SameSiteRedirects(request.full_url)
        return handler.redirect_request(request, io.BytesIO(), 302, "Found", email.message.Message(), target)

    for refused in ("http://gw.example/x", "https://gw.example:8443/x", "https://evil.example/x"):
        with pytest.raises(urllib.error.HTTPError):
            redirect(f"https://reader:{SECRET}@gw.example/ipfs/x", refused)  # downgrade, other port, other host
    same = redirect(f"https://reader:{SECRET}@gw.example/ipfs/x", "https://gw.example/ipfs/x/")
    assert same is not None and same.get_header("Authorization", "").startswith("Basic ")
    for changed in ("https://gw.example/x", "http://sub.gw.example/x"):  # upgraded scheme, other host: no credentials
        moved = redirect(f"http://reader:{SECRET}@gw.example/ipfs/x", changed)
        assert moved is not None and moved.get_header("Authorization") is None


def test_concurrent_readers_of_one_missing_document_cause_one_fetch(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def slow_miss(handler: Recorder) -> None:
        time.sleep(0.5)
        _send(handler, b"{}", 404)

    url, recorder = serve(slow_miss)
    store = FetchingDocumentStore(tmp_path, [url])
    readers = [threading.Thread(target=store.has, args=(DIGEST,)) for _ in range(12)]
    for n, reader in enumerate(readers):
        reader.start()
        time.sleep(0.05 * (n % 3))  # some arrive while the first fetch runs, some as it ends
    for reader in readers:
        reader.join()
    assert len(recorder.seen) == 1  # the others waited, then saw the miss it remembered
    assert store._fetching == {}  # nothing left behind for the next reader


def test_a_fetch_budget_bounds_what_one_page_waits_for(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def never_answers(handler: Recorder) -> None:
        time.sleep(3)

    sources = [serve(never_answers)[0] for _ in range(3)]  # the budget spans every source, not each
    store = FetchingDocumentStore(tmp_path, sources)
    started = time.monotonic()
    with store.budget(1.0):
        assert not any(store.has(bytes([n]) * 32) for n in range(10))
    assert time.monotonic() - started < 2.5  # not 10 x the 2 s socket timeout
    assert store._misses == {}  # cut short by the budget: not remembered as missing
