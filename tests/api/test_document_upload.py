"""`POST /api/v1/documents`: each refusal one by one, and fetched documents checked by hash.

A writer's chain and a server whose data directory holds only its index (no documents):
what the server gets, it gets by upload or from its document sources.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.documents import UploadLimiter
from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.cid import cid_of_digest
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.deploy import ensure_deployed
from ledger.documents import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, canonical_json
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import BatchCreate, DocumentRef, LicenceScope
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter

GTIN = "09506000134352"


@dataclass
class Ledger:
    writer_settings: Settings
    server_settings: Settings
    metadata: dict[str, bytes]  # lot -> its metadata document's bytes
    certificate: bytes  # a file named by lot L-DOC's metadata


def _batch(lot: str, **extra: object) -> BatchCreate:
    return BatchCreate(gtin=GTIN, lot=lot, quantity=100, unit="KGM", product=f"Green coffee {lot}", origin="Huila, CO", **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    writer_dir, server_dir = tmp_path_factory.mktemp("writer"), tmp_path_factory.mktemp("server")
    settings = Settings(data_dir=writer_dir, rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start()
    try:
        deployment, _, _ = ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        conn = LedgerConnection.open(settings)
        accounts = conn.w3.eth.accounts
        admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
        admin.register_actor(accounts[1], "Finca La Esperanza", "CO")
        admin.grant_supplier(accounts[1])
        admin.grant_licence(accounts[1], LicenceScope.company_prefix("9506000"))
        farm = LedgerWriter(conn, NodeAccountSigner(accounts[1]))
        certificate = b"%PDF-1.4 organic certificate of lot L-DOC"
        batches = [
            _batch("L-OK"), _batch("L-AGAIN"), _batch("L-FETCH"),
            _batch("L-DOC", documents=(DocumentRef(name="organic.pdf", sha256=farm.documents.put_bytes(certificate).hex()),)),
            _batch("L-BIG", extra={"notes": "x" * (MAX_METADATA_BYTES + 10)}),
        ]  # fmt: skip
        for batch in batches:
            farm.register_batch(batch)
        store = IndexStore.open(None, server_dir)
        Scanner(conn.w3, conn.address, conn.deploy_block, store).sync()
        store.dispose()
        server = Settings(data_dir=server_dir, rpc_url=settings.rpc_url, contract_address=deployment.address)
        yield Ledger(settings, server, {b.lot: canonical_json(b.metadata_document()) for b in batches}, certificate)
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def client(ledger: Ledger) -> Iterator[TestClient]:
    with TestClient(create_app(ledger.server_settings)) as client:
        yield client


def test_an_anchored_metadata_document_is_accepted_then_served(client: TestClient, ledger: Ledger) -> None:
    body = ledger.metadata["L-OK"]
    digest = hashlib.sha256(body).hexdigest()
    assert client.get(f"/api/v1/documents/{digest}").status_code == 404
    answer = client.post("/api/v1/documents", content=body)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"sha256": digest, "cid": cid_of_digest(bytes.fromhex(digest)), "anchored_as": "batch metadata", "size": len(body)}
    assert client.post(f"/api/v1/documents/{digest}", content=body).status_code == 200  # already held
    served = client.get(f"/api/v1/documents/{digest}")
    assert served.status_code == 200 and served.content == body
    assert "Green coffee L-OK" in client.get(f"/01/{GTIN}/10/L-OK").text


def test_an_unanchored_document_is_refused(client: TestClient) -> None:
    body = b'{"gtin":"09506000134352","lot":"L-FORGED","product":"Forged coffee"}'
    answer = client.post("/api/v1/documents", content=body)
    assert answer.status_code == 422
    assert "is anchored on the ledger" in answer.json()["detail"] and "only documents the chain anchors are accepted" in answer.json()["detail"]
    assert client.get(f"/api/v1/documents/{hashlib.sha256(body).hexdigest()}").status_code == 404


def test_content_not_matching_the_named_hash_is_refused(client: TestClient, ledger: Ledger) -> None:
    claimed = hashlib.sha256(ledger.metadata["L-AGAIN"]).hexdigest()
    answer = client.post(f"/api/v1/documents/{claimed}", content=ledger.metadata["L-AGAIN"] + b" ")
    assert answer.status_code == 400
    assert f"not the {claimed} named in the address" in answer.json()["detail"]
    assert client.get(f"/api/v1/documents/{claimed}").status_code == 404


def test_a_file_is_accepted_once_the_metadata_naming_it_is(client: TestClient, ledger: Ledger) -> None:
    assert client.post("/api/v1/documents", content=ledger.certificate).status_code == 422
    assert client.post("/api/v1/documents", content=ledger.metadata["L-DOC"]).status_code == 201
    answer = client.post("/api/v1/documents", content=ledger.certificate)
    assert answer.status_code == 201 and answer.json()["anchored_as"] == "document named by anchored metadata"
    served = client.get(f"/api/v1/documents/{hashlib.sha256(ledger.certificate).hexdigest()}")
    assert served.content == ledger.certificate and served.headers["content-disposition"].startswith("attachment")


def test_oversize_documents_are_refused(client: TestClient, ledger: Ledger) -> None:
    big_metadata = ledger.metadata["L-BIG"]  # anchored, but over the metadata limit
    answer = client.post("/api/v1/documents", content=big_metadata)
    assert answer.status_code == 413
    assert f"a batch metadata document may have at most {MAX_METADATA_BYTES} bytes" in answer.json()["detail"]
    answer = client.post("/api/v1/documents", content=b"x" * (MAX_DOCUMENT_BYTES + 1))
    assert answer.status_code == 413 and "larger than this server accepts" in answer.json()["detail"]


def test_too_many_uploads_from_one_client_are_refused(client: TestClient, ledger: Ledger) -> None:
    client.app.state.upload_limiter = UploadLimiter(burst=3, rate=0.01)  # type: ignore[attr-defined]
    try:
        body = ledger.metadata["L-OK"]
        assert [client.post("/api/v1/documents", content=body).status_code for _ in range(3)] == [200, 200, 200]
        answer = client.post("/api/v1/documents", content=body)
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) > 0 and "too many uploads" in answer.json()["detail"]
    finally:
        client.app.state.upload_limiter = UploadLimiter()  # type: ignore[attr-defined]


class _Source(http.server.BaseHTTPRequestHandler):
    """A document source answering every path with `body` (a fault: wrong bytes)."""

    body = b""
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[_Source]) -> tuple[http.server.HTTPServer, str]:
    port = free_loopback_port()
    server = http.server.HTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def test_a_fetched_document_that_does_not_match_its_hash_is_never_shown(ledger: Ledger, tmp_path: Path) -> None:
    wanted = ledger.metadata["L-FETCH"]
    digest = hashlib.sha256(wanted).digest()
    liar = type("Liar", (_Source,), {"body": wanted.replace(b"L-FETCH", b"L-FAKE!"), "paths": []})
    gateway = type("Gateway", (_Source,), {"body": wanted, "paths": []})
    liar_server, liar_url = _serve(liar)
    gateway_server, gateway_url = _serve(gateway)
    index_url = f"sqlite:///{ledger.server_settings.data_dir / 'index.sqlite'}"
    try:
        reader = ledger.server_settings.model_copy(update={"data_dir": tmp_path, "document_sources": [liar_url], "database_url": index_url})
        with TestClient(create_app(reader)) as client:
            page = client.get(f"/01/{GTIN}/10/L-FETCH").text
            assert "Green coffee L-FETCH" not in page and "L-FAKE!" not in page
            assert client.get(f"/api/v1/documents/{digest.hex()}").status_code == 404
            assert liar.paths == [f"/api/v1/documents/{digest.hex()}"]  # asked once: the miss is remembered
        assert not any(p.is_file() for p in tmp_path.rglob("*") if "sha256" in p.parts)

        both = reader.model_copy(update={"document_sources": [liar_url, gateway_url + "/ipfs"]})
        with TestClient(create_app(both)) as client:
            assert "Green coffee L-FETCH" in client.get(f"/01/{GTIN}/10/L-FETCH").text
            assert gateway.paths == [f"/ipfs/{cid_of_digest(digest)}"]
            assert client.get(f"/api/v1/documents/{digest.hex()}").content == wanted
    finally:
        liar_server.shutdown()
        gateway_server.shutdown()
