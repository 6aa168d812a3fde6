"""Every GET route answers HEAD with the GET's status and headers and no body (GS1
resolvers and link checkers ask with HEAD); other methods still get 405 with Allow."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from ledger.demo import DEMO_BAG
from ledger.identifiers import batch_id, digital_link

BAG = digital_link(*DEMO_BAG).path()
BAG_ID = "0x" + batch_id(*DEMO_BAG).hex()
UNKNOWN_LOT = digital_link(DEMO_BAG[0], "NO-SUCH-LOT").path()

#: A representative of each route family, and the GET status each must give.
ROUTES = [
    ("/", {}, 200),
    ("/search?gtin=" + DEMO_BAG[0] + "&lot=" + DEMO_BAG[1], {}, 303),
    (f"/01/{DEMO_BAG[0]}", {}, 404),  # a product without a lot
    (BAG, {}, 200),
    (BAG, {"Accept": "application/json"}, 200),
    (BAG + "?linkType=all", {}, 200),
    (BAG + "?linkType=gs1:traceability", {}, 200),
    (BAG + "?linkType=gs1:nothing", {}, 404),
    ("/labels" + BAG + "?count=2", {}, 200),
    ("/qr" + BAG + ".svg", {}, 200),
    ("/qr" + BAG + ".png", {}, 200),
    (UNKNOWN_LOT, {}, 404),
    (UNKNOWN_LOT, {"Accept": "application/json"}, 404),
    ("/no/such/page", {}, 404),
    ("/api/v1/batches?limit=2", {}, 200),
    (f"/api/v1/batches/{BAG_ID}/history", {}, 200),
    (f"/api/v1/batches/{BAG_ID}/fsma.csv", {}, 200),
    ("/api/v1/batches/0x00", {}, 422),
    ("/api/v1/index", {}, 200),
    ("/openapi.json", {}, 200),
    ("/docs", {}, 200),
]


@pytest.mark.parametrize(("path", "headers", "status"), ROUTES, ids=[f"{p} {h}" if h else p for p, h, _ in ROUTES])
def test_head_answers_as_get_without_the_body(client, path, headers, status):
    get = client.get(path, headers=headers, follow_redirects=False)
    head = client.head(path, headers=headers, follow_redirects=False)
    assert get.status_code == status
    assert head.status_code == get.status_code
    assert dict(head.headers) == dict(get.headers)  # Content-Length included: the GET's
    assert head.content == b"" and (get.content or status == 303)


def test_the_app_itself_sends_no_body_on_head(client):
    """At the ASGI level, not relying on the server to drop it: a HEAD makes the app send
    the start of the answer and one empty body message."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    for path in (BAG, UNKNOWN_LOT):
        sent.clear()
        raw = path.encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "HEAD",
            "scheme": "http",
            "path": path,
            "raw_path": raw,
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "state": {},
        }
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(client.app(scope, receive, send))).result()
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], path
        assert sent[1]["body"] == b"" and not sent[1].get("more_body", False)
        assert scope["method"] == "HEAD"  # the server's own scope is left as it was


def test_head_on_healthz(client):
    get, head = client.get("/healthz"), client.head("/healthz")
    assert head.status_code == get.status_code and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def test_head_on_a_static_file(site, tmp_path):
    """Static files mounted beside the app (as bench/api_app.py does) keep answering HEAD."""
    from api.main import create_app

    (tmp_path / "page.html").write_text("<p>static</p>")
    app = create_app(site.settings)
    app.mount("/static", StaticFiles(directory=tmp_path), name="static")
    with TestClient(app) as client:
        get, head = client.get("/static/page.html"), client.head("/static/page.html")
        assert get.status_code == head.status_code == 200 and head.content == b""
        assert dict(head.headers) == dict(get.headers)
        assert client.head("/static/missing.html").status_code == 404


@pytest.mark.parametrize("path", [BAG, "/", "/api/v1/batches", f"/qr{BAG}.svg", "/healthz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_still_get_405_with_allow(client, path, method):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def raw_exchange(base_url: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request on a raw socket, read until the server closes: what went over the wire."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_head_through_the_real_server(live_server):
    """uvicorn as `provenance serve` runs it: the GET's status and length, and not one
    byte of body on the wire."""
    for path, status in [(BAG, 200), (UNKNOWN_LOT, 404), ("/qr" + BAG + ".png", 200), ("/api/v1/index", 200)]:
        get_status, get_headers, get_body = raw_exchange(live_server, "GET", path)
        head_status, head_headers, head_body = raw_exchange(live_server, "HEAD", path)
        assert get_status == head_status == status, path
        assert int(get_headers["content-length"]) == len(get_body) > 0
        assert head_headers["content-length"] == get_headers["content-length"] and head_body == b"", path
