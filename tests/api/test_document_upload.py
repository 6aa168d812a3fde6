"""`POST /api/v1/documents`: each refusal one by one, and fetched documents checked by hash.

A writer's chain and a server whose data directory holds only its index (no documents):
what the server gets, it gets by upload or from its document sources.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

import api.routes.documents as documents_route
import api.views as documents_views
from api.main import create_app
from api.routes.documents import UPLOAD_BURST, UploadLimiter, client_key
from ledger.anchors import find_anchor
from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.cid import cid_of_digest
from ledger.cli.web import WebServer
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.deploy import ensure_deployed
from ledger.documents import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, MAX_REFERENCES_PER_DOCUMENT, DocumentStore, canonical_json
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import BatchCreate, DocumentRef, LicenceScope, TransformationKind
from ledger.signers import NodeAccountSigner
from ledger.sources import FetchingDocumentStore
from ledger.writer import LedgerWriter

GTIN = "09506000134352"
COPY_GTIN = "09506001000007"


@dataclass
class Ledger:
    writer_settings: Settings
    server_settings: Settings
    metadata: dict[str, bytes]  # lot -> its metadata document's bytes
    certificate: bytes  # a file named by lot L-DOC's metadata
    svg: bytes  # an SVG with a script, named by lot L-SVG's metadata
    step_note: bytes  # a step's note (its hash only in the events table), naming `step_photo`
    step_photo: bytes
    passport: bytes  # a private file named (`private: true`) by lot L-PRIV's metadata
    payslip: bytes  # another, named private by L-PRIV and anchored directly by another supplier's step
    many: list[bytes]  # MAX_REFERENCES_PER_DOCUMENT + 8 files named by lot L-MANY's metadata
    requested_profile: bytes  # a profile an organisation asked for, never approved


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"><script>fetch("/steal?"+document.cookie)</script></svg>'


def _batch(lot: str, gtin: str = GTIN, quantity: int = 100, **extra: object) -> BatchCreate:
    return BatchCreate(
        gtin=gtin, lot=lot, quantity=quantity, unit="KGM", product=f"Green coffee {lot}", origin="Huila, CO", **extra
    )  # type: ignore[arg-type]


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
        svg_ref = DocumentRef(name="label.svg", sha256=farm.documents.put_bytes(SVG).hex())
        step_photo = b"\xff\xd8\xff photo of the shipment"
        step_note = canonical_json(
            {"note": "shipped cool", "documents": [{"name": "photo.jpg", "sha256": hashlib.sha256(step_photo).hexdigest()}]}
        )
        passport = b"%PDF-1.4 passport of Juan Perez"
        private_ref = DocumentRef(name="private document 1", sha256=farm.documents.put_bytes(passport).hex(), private=True)
        payslip = b"%PDF-1.4 payslip of Juan Perez"
        payslip_ref = DocumentRef(name="private document 2", sha256=farm.documents.put_bytes(payslip).hex(), private=True)
        many = [b"file %d named by one lot" % n for n in range(MAX_REFERENCES_PER_DOCUMENT + 8)]
        many_refs = tuple(DocumentRef(name=f"{n}.txt", sha256=farm.documents.put_bytes(f).hex()) for n, f in enumerate(many))
        batches = [
            _batch("L-PRIV", documents=(private_ref, payslip_ref)), _batch("L-MANY", documents=many_refs),
            _batch("L-OK"), _batch("L-AGAIN"), _batch("L-FETCH"),
            _batch("L-DOC", documents=(DocumentRef(name="organic.pdf", sha256=farm.documents.put_bytes(certificate).hex()),)),
            _batch("L-BIG", extra={"notes": "x" * (MAX_METADATA_BYTES + 10)}),
            _batch("L-SVG", documents=(svg_ref,)), _batch("L-TAMPER"), _batch("L-RACE"),
        ]  # fmt: skip
        inputs = [_batch(f"L-IN-{n}") for n in range(6)]
        for batch in batches + inputs:
            farm.register_batch(batch)
        merged = _batch("L-MERGED", quantity=600)
        farm.transform(TransformationKind.MERGE, [(i.batch_id, 100) for i in inputs], [merged])
        # Another supplier names the farm's private passport publicly (a copy it got hold
        # of) and anchors the private payslip's hash directly as a step's note.
        admin.register_actor(accounts[2], "Copias del Norte", "CO")
        admin.grant_supplier(accounts[2])
        admin.grant_licence(accounts[2], LicenceScope.company_prefix("9506001"))
        copier = LedgerWriter(conn, NodeAccountSigner(accounts[2]))
        passport_copy = DocumentRef(name="copy-of-the-private-file.pdf", sha256=hashlib.sha256(passport).hexdigest())
        copy_lot = _batch("L-COPY", gtin=COPY_GTIN, documents=(passport_copy,))
        copier.register_batch(copy_lot)
        copier.record_step(copy_lot.batch_id, "shipping", "Neiva, CO", hashlib.sha256(payslip).digest())
        batches += [merged, copy_lot]
        farm.record_step(_batch("L-OK").batch_id, "shipping", "Huila, CO", farm.documents.put_bytes(step_note))
        requested_profile = canonical_json({"website": "http://phish.example", "phone": "+1-900-SCAM"})
        farm.request_profile_update("Finca La Esperanza +1-900-SCAM", "CO", farm.documents.put_bytes(requested_profile))
        store = IndexStore.open(None, server_dir)
        Scanner(conn.w3, conn.address, conn.deploy_block, store).sync()
        store.dispose()
        server = Settings(data_dir=server_dir, rpc_url=settings.rpc_url, contract_address=deployment.address)
        yield Ledger(
            settings,
            server,
            {b.lot: canonical_json(b.metadata_document()) for b in batches},
            certificate,
            SVG,
            step_note,
            step_photo,
            passport,
            payslip,
            many,
            requested_profile,
        )
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
    assert answer.json() == {
        "sha256": digest,
        "cid": cid_of_digest(bytes.fromhex(digest)),
        "anchored_as": "batch metadata",
        "size": len(body),
    }
    assert client.post(f"/api/v1/documents/{digest}", content=body).status_code == 200  # already held
    served = client.get(f"/api/v1/documents/{digest}")
    assert served.status_code == 200 and served.content == body
    assert "Green coffee L-OK" in client.get(f"/01/{GTIN}/10/L-OK").text


def test_an_unanchored_document_is_refused(client: TestClient) -> None:
    body = b'{"gtin":"09506000134352","lot":"L-FORGED","product":"Forged coffee"}'
    answer = client.post("/api/v1/documents", content=body)
    assert answer.status_code == 422
    assert (
        "is anchored on the ledger" in answer.json()["detail"]
        and "only documents the chain anchors are accepted" in answer.json()["detail"]
    )
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


def test_a_copy_of_a_private_document_is_never_taken_fetched_or_served(
    client: TestClient, ledger: Ledger, tmp_path: Path
) -> None:
    # Whoever holds a copy of the passport (private in L-PRIV's public metadata) uploads it.
    assert client.post("/api/v1/documents", content=ledger.metadata["L-PRIV"]).status_code == 201
    digest = hashlib.sha256(ledger.passport).hexdigest()
    assert client.post(f"/api/v1/documents/{digest}", content=ledger.passport).status_code == 422
    assert client.post("/api/v1/documents", content=ledger.passport).status_code == 422
    assert client.get(f"/api/v1/documents/{digest}").status_code == 404
    page = client.get(f"/01/{GTIN}/10/L-PRIV").text
    assert f'private document 1: held by Finca La Esperanza, sha256 <span class="mono">{digest}</span>' in page
    assert f'href="/api/v1/documents/{digest}"' not in page
    # A server that recorded the reference before private ones were told apart: the
    # metadata is read again, so the old record opens nothing.
    documents = DocumentStore(ledger.server_settings.documents_dir)
    metadata = hashlib.sha256(ledger.metadata["L-PRIV"]).digest()
    documents.record_references(metadata, {"documents": [{"sha256": digest}]})
    assert documents.referenced_by(bytes.fromhex(digest)) == [metadata]
    assert client.post(f"/api/v1/documents/{digest}", content=ledger.passport).status_code == 422


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reader(ledger: Ledger, data_dir: Path, sources: list[str] | None = None) -> TestClient:
    """A server on the writer's index with its own (empty) document store."""
    index_url = f"sqlite:///{ledger.server_settings.data_dir / 'index.sqlite'}"
    return TestClient(
        create_app(
            ledger.server_settings.model_copy(
                update={"data_dir": data_dir, "document_sources": sources or [], "database_url": index_url}
            )
        )
    )


def test_another_organisation_naming_a_private_file_publicly_opens_nothing(client: TestClient, ledger: Ledger) -> None:
    # The farm's metadata (passport and payslip private) is here; then another supplier's
    # lot names the passport publicly and its step anchors the payslip's hash directly.
    assert client.post("/api/v1/documents", content=ledger.metadata["L-PRIV"]).status_code in (200, 201)
    assert client.post("/api/v1/documents", content=ledger.metadata["L-COPY"]).status_code == 201
    for private in (ledger.passport, ledger.payslip):
        assert client.post(f"/api/v1/documents/{_hex(private)}", content=private).status_code == 422
        assert client.post("/api/v1/documents", content=private).status_code == 422
        assert client.get(f"/api/v1/documents/{_hex(private)}").status_code == 404
    farm_page = client.get(f"/01/{GTIN}/10/L-PRIV").text
    for n, private in enumerate((ledger.passport, ledger.payslip), start=1):
        assert f'private document {n}: held by Finca La Esperanza, sha256 <span class="mono">{_hex(private)}</span>' in farm_page
    copy_page = client.get(f"/01/{COPY_GTIN}/10/L-COPY").text
    assert "copy-of-the-private-file.pdf: held by Copias del Norte" in copy_page
    assert f'href="/api/v1/documents/{_hex(ledger.passport)}"' not in copy_page


def test_a_private_naming_arriving_after_the_public_one_still_wins(ledger: Ledger, tmp_path: Path) -> None:
    with _reader(ledger, tmp_path) as reader:
        # Public naming first: the server cannot know yet, so it takes the copies.
        assert reader.post("/api/v1/documents", content=ledger.metadata["L-COPY"]).status_code == 201
        assert (
            reader.post("/api/v1/documents", content=ledger.passport).json()["anchored_as"]
            == "document named by anchored metadata"
        )
        assert reader.post("/api/v1/documents", content=ledger.payslip).json()["anchored_as"] == "step note"
        assert reader.get(f"/api/v1/documents/{_hex(ledger.passport)}").status_code == 200
        # The farm's metadata arrives: from now on the copies held here are not served or taken.
        assert reader.post("/api/v1/documents", content=ledger.metadata["L-PRIV"]).status_code == 201
        for private in (ledger.passport, ledger.payslip):
            assert reader.get(f"/api/v1/documents/{_hex(private)}").status_code == 404
            assert reader.post("/api/v1/documents", content=private).status_code == 422
        assert f'href="/api/v1/documents/{_hex(ledger.passport)}"' not in reader.get(f"/01/{COPY_GTIN}/10/L-COPY").text


def test_a_file_named_private_is_never_fetched_whoever_names_it_publicly(ledger: Ledger, tmp_path: Path) -> None:
    held = {_hex(d): d for d in (ledger.metadata["L-PRIV"], ledger.metadata["L-COPY"], ledger.passport, ledger.payslip)}

    class Everything(_Source):
        """A source holding every document, the private files included (a leaked copy)."""

        paths: list[str] = []

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.body = held.get(self.path.rsplit("/", 1)[-1], b"")
            super().do_GET()

    server, url = _serve(Everything)
    try:
        with _reader(ledger, tmp_path / "later", [url]) as reader:  # fetched in the order public, then private
            assert reader.get(f"/api/v1/documents/{_hex(ledger.metadata['L-COPY'])}").status_code == 200
            assert reader.get(f"/api/v1/documents/{_hex(ledger.passport)}").status_code == 200
            assert reader.get(f"/api/v1/documents/{_hex(ledger.metadata['L-PRIV'])}").status_code == 200
            assert reader.get(f"/api/v1/documents/{_hex(ledger.passport)}").status_code == 404
        Everything.paths.clear()
        with _reader(ledger, tmp_path / "first", [url]) as reader:  # private naming fetched first
            for metadata in (ledger.metadata["L-PRIV"], ledger.metadata["L-COPY"]):
                assert reader.get(f"/api/v1/documents/{_hex(metadata)}").status_code == 200
            for private in (ledger.passport, ledger.payslip):
                assert reader.get(f"/api/v1/documents/{_hex(private)}").status_code == 404
            assert f'href="/api/v1/documents/{_hex(ledger.passport)}"' not in reader.get(f"/01/{COPY_GTIN}/10/L-COPY").text
        # The fetching store itself never asks for it either (whatever its caller checked).
        store = FetchingDocumentStore(tmp_path / "first" / "documents", [url])
        with pytest.raises(FileNotFoundError):
            store.get(bytes.fromhex(_hex(ledger.passport)))
        assert not any(_hex(p) in path for path in Everything.paths for p in (ledger.passport, ledger.payslip))
    finally:
        server.shutdown()


def test_a_merged_lot_whose_inputs_no_source_answers_for_builds_within_the_page_budget(ledger: Ledger, tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        with _reader(ledger, tmp_path, [f"http://127.0.0.1:{silent.getsockname()[1]}"]) as reader:
            # Only the merged lot's own metadata is here: its six inputs' metadata is held nowhere.
            assert reader.post("/api/v1/documents", content=ledger.metadata["L-MERGED"]).status_code == 201
            started = time.monotonic()
            page = reader.get(f"/01/{GTIN}/10/L-MERGED").text
            took = time.monotonic() - started
            misses = reader.app.state.context.model.documents._misses  # type: ignore[attr-defined]
        assert "Green coffee L-MERGED" in page and "Green coffee L-IN-" not in page
        assert took < documents_views.PAGE_FETCH_SECONDS + 3, took  # not 6 x the 2 s socket timeout
        assert len(misses) <= 1  # cut short by the budget: not remembered as missing
    finally:
        silent.close()


def test_one_metadata_document_makes_at_most_its_first_references_acceptable(client: TestClient, ledger: Ledger) -> None:
    assert client.post("/api/v1/documents", content=ledger.metadata["L-MANY"]).status_code == 201
    codes = [client.post("/api/v1/documents", content=f).status_code for f in ledger.many]
    assert codes == [201] * MAX_REFERENCES_PER_DOCUMENT + [422] * 8


def test_a_profile_awaiting_the_admins_approval_is_not_taken_or_served(client: TestClient, ledger: Ledger) -> None:
    digest = hashlib.sha256(ledger.requested_profile).hexdigest()
    assert client.post(f"/api/v1/documents/{digest}", content=ledger.requested_profile).status_code == 422
    assert client.get(f"/api/v1/documents/{digest}").status_code == 404


def test_upload_spool_files_a_killed_worker_left_are_removed_when_the_server_starts(ledger: Ledger) -> None:
    spool = ledger.server_settings.documents_dir / "incoming"
    spool.mkdir(parents=True, exist_ok=True)
    stale, current = spool / "tmp-killed-worker", spool / "tmp-upload-in-progress"
    stale.write_bytes(b"x" * 1024)
    current.write_bytes(b"y" * 1024)
    old = time.time() - documents_route.UPLOAD_BODY_SECONDS - 60
    os.utime(stale, (old, old))
    with TestClient(create_app(ledger.server_settings)):
        assert not stale.exists() and current.exists()  # another worker's upload may still be arriving
    current.unlink()


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
        reader = ledger.server_settings.model_copy(
            update={"data_dir": tmp_path, "document_sources": [liar_url], "database_url": index_url}
        )
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


def test_a_slow_source_delays_a_page_naming_many_documents_by_the_page_budget_only(ledger: Ledger, tmp_path: Path) -> None:
    metadata = ledger.metadata["L-MANY"]

    class Slow(_Source):
        """Serves the lot's metadata at once; every file it is asked for, it answers just
        inside the socket timeout with a 404 (a hostile or overloaded source)."""

        paths: list[str] = []

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            type(self).paths.append(self.path)
            if self.path.endswith(hashlib.sha256(metadata).hexdigest()):
                self.body = metadata
                return super().do_GET()
            time.sleep(1.5)
            self.send_error(404)

    server, url = _serve(Slow)
    index_url = f"sqlite:///{ledger.server_settings.data_dir / 'index.sqlite'}"
    try:
        reader = ledger.server_settings.model_copy(
            update={"data_dir": tmp_path, "document_sources": [url], "database_url": index_url}
        )
        with TestClient(create_app(reader)) as client:
            started = time.monotonic()
            page = client.get(f"/01/{GTIN}/10/L-MANY").text
            took = time.monotonic() - started
        assert "Green coffee L-MANY" in page and "0.txt: held by Finca La Esperanza" in page
        assert took < documents_views.PAGE_FETCH_SECONDS + 3, took  # not 32 x 1.5 s
        assert len(Slow.paths) <= 4
    finally:
        server.shutdown()


# ---------------------------------------------------------------------------- attacks
# Each test below performs one attack on the documents feature and checks it fails.


def test_an_uploaded_svg_with_a_script_never_runs_in_the_sites_origin(client: TestClient, ledger: Ledger) -> None:
    assert client.post("/api/v1/documents", content=ledger.metadata["L-SVG"]).status_code in (200, 201)
    assert client.post("/api/v1/documents", content=ledger.svg).status_code == 201
    served = client.get(f"/api/v1/documents/{hashlib.sha256(ledger.svg).hexdigest()}")
    assert served.content == ledger.svg
    assert served.headers["content-type"] == "application/octet-stream"  # never image/svg+xml or text/html
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"
    policy = [p.strip() for p in served.headers["content-security-policy"].split(";")]
    assert "sandbox" in policy and "default-src 'none'" in policy
    metadata = client.get(f"/api/v1/documents/{hashlib.sha256(ledger.metadata['L-SVG']).hexdigest()}")
    assert metadata.headers["content-type"] == "application/json"  # JSON is shown inline, but sandboxed too
    assert metadata.headers["x-content-type-options"] == "nosniff" and "sandbox" in metadata.headers["content-security-policy"]


def test_a_step_note_anchored_only_in_the_events_table_is_accepted_with_the_file_it_names(
    client: TestClient, ledger: Ledger
) -> None:
    answer = client.post("/api/v1/documents", content=ledger.step_note)
    assert answer.status_code == 201, answer.text
    assert answer.json()["anchored_as"] == "step note"
    answer = client.post("/api/v1/documents", content=ledger.step_photo)
    assert answer.status_code == 201 and answer.json()["anchored_as"] == "document named by anchored metadata"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/documents/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/documents/..",
        "/api/v1/documents/" + "a" * 63,
        "/api/v1/documents/" + "a" * 65,
        "/api/v1/documents/" + "g" * 64,
        "/api/v1/documents/" + "a" * 62 + "%2F" + "a" * 2,
        "/api/v1/documents/0x0x" + "a" * 62,
    ],
)
def test_a_hash_that_is_not_64_hex_digits_reaches_no_file(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code in (404, 422), (path, answer.status_code)
    assert b"root:" not in answer.content
    assert client.post(path, content=b"x").status_code in (404, 405, 422)


def test_upper_case_and_0x_hashes_name_the_same_document(client: TestClient, ledger: Ledger) -> None:
    body = ledger.metadata["L-OK"]
    digest = hashlib.sha256(body).hexdigest()
    assert client.post(f"/api/v1/documents/0x{digest.upper()}", content=body).status_code in (200, 201)
    for name in (digest.upper(), "0x" + digest, "0X" + digest if False else "0x" + digest.upper()):
        answer = client.get(f"/api/v1/documents/{name}")
        assert answer.status_code == 200 and answer.content == body
        assert answer.headers["etag"] == f'"{digest}"'


def test_a_damaged_copy_on_disk_is_never_shown_and_an_upload_repairs_it(client: TestClient, ledger: Ledger) -> None:
    body = ledger.metadata["L-TAMPER"]
    digest = hashlib.sha256(body).digest()
    assert client.post("/api/v1/documents", content=body).status_code == 201
    path = DocumentStore(ledger.server_settings.documents_dir).path_of(digest)
    path.write_bytes(body.replace(b"Green coffee L-TAMPER", b"Poisoned coffee!!!!!"))  # same size, other bytes
    with TestClient(create_app(ledger.server_settings)) as fresh:  # no page built before the damage
        page = fresh.get(f"/01/{GTIN}/10/L-TAMPER").text
        assert "Poisoned" not in page and "Green coffee L-TAMPER" not in page
        assert fresh.get(f"/api/v1/documents/{digest.hex()}").status_code == 404
        assert fresh.post("/api/v1/documents", content=body).status_code == 201  # not "already held": repaired
        assert fresh.get(f"/api/v1/documents/{digest.hex()}").content == body
    with TestClient(create_app(ledger.server_settings)) as fresh:
        assert "Green coffee L-TAMPER" in fresh.get(f"/01/{GTIN}/10/L-TAMPER").text


def test_a_cycle_of_references_is_not_an_anchor(ledger: Ledger, tmp_path: Path) -> None:
    # Two files that name each other, neither anchored: no recursion, no anchor.
    store = DocumentStore(tmp_path)
    first = {"documents": [{"sha256": "00" * 32}]}
    a = store.put_json(first)
    b = store.put_json({"documents": [{"sha256": a.hex()}]})
    store.record_references(b, {"documents": [{"sha256": a.hex()}]})
    store.record_references(a, {"documents": [{"sha256": b.hex()}]})
    index = IndexStore.open(None, ledger.server_settings.data_dir)
    try:
        assert find_anchor(index, store, a) is None and find_anchor(index, store, b) is None
        assert find_anchor(index, store, bytes(32)) is None  # the zero hash means "no document"
    finally:
        index.dispose()


def test_rotating_ipv6_addresses_within_one_network_share_one_allowance() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    limiter = UploadLimiter(burst=2, rate=0.001)
    assert [limiter.take(client_key(f"2001:db8:1:2::{n:x}")) == 0 for n in range(3)] == [True, True, False]


def test_many_client_addresses_do_not_grow_the_limiter_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_route, "_MAX_TRACKED_CLIENTS", 100)
    limiter = UploadLimiter(burst=1, rate=1000.0)  # refills within a millisecond
    for n in range(1000):
        limiter.take(f"198.51.100.{n % 250}.{n}")
    time.sleep(0.01)
    limiter.take("203.0.113.1")
    assert len(limiter._buckets) <= 101


def _request(chunks: list[bytes], delay: float) -> tuple[Request, list[int]]:
    """A real Starlette request whose body arrives in `chunks`, `delay` seconds apart."""
    calls = [0]

    async def receive() -> dict[str, object]:
        calls[0] += 1
        if calls[0] > 1:
            await anyio.sleep(delay)
        index = calls[0] - 1
        return {
            "type": "http.request",
            "body": chunks[index] if index < len(chunks) else b"",
            "more_body": index < len(chunks) - 1,
        }

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive), calls


def _run(function, *args):
    """`anyio.run` in a thread of its own: the session's browser (Playwright's sync API)
    keeps an event loop running in the main thread while the page tests share it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, function, *args).result()


def test_a_body_that_trickles_in_is_abandoned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(documents_route, "UPLOAD_BODY_SECONDS", 0.5)
    request, calls = _request([b"x"] * 100, delay=0.2)
    started = time.monotonic()
    with DocumentStore(tmp_path).incoming() as (handle, _):
        assert _run(documents_route._receive, request, handle, 1000) is None
    assert time.monotonic() - started < 2 and calls[0] < 10


def test_a_body_over_the_limit_is_dropped_as_soon_as_it_is_over(tmp_path: Path) -> None:
    request, calls = _request([b"x" * 1000] * 1000, delay=0)
    with DocumentStore(tmp_path).incoming() as (handle, path), pytest.raises(documents_route._TooBig):
        _run(documents_route._receive, request, handle, 4500)
    assert calls[0] == 5  # read no further than the first chunk over the limit
    assert not list((tmp_path / "incoming").iterdir())  # the spool file is gone


# ---------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def live(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`provenance serve`'s uvicorn command line on the server's data directory."""
    server = WebServer(ledger.server_settings, port=free_loopback_port(), workers=1)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _raw(url: str, head: bytes, body_chunks: Iterator[bytes] = iter(()), timeout: float = 10) -> tuple[bytes, int]:
    """Send a hand-made request; returns the start of the answer and how many body bytes
    could be sent (the server may stop reading and close)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(_recv_some(sock)), daemon=True)
    sent = 0
    try:
        sock.sendall(head)
        reader.start()
        for chunk in body_chunks:
            if answer:
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed: it stopped reading
    reader.join(timeout)
    sock.close()
    return (answer[0] if answer else b""), sent


def _recv_some(sock: socket.socket) -> bytes:
    """The answer: what arrives until the server closes or pauses for a second."""
    data = b""
    try:
        data = sock.recv(65536)
        sock.settimeout(1)
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as exc:
        data = data or repr(exc).encode()
    return data


def test_an_upload_naming_an_unanchored_hash_is_refused_before_its_body_is_sent(live: str) -> None:
    head = (f"POST /api/v1/documents/{'ab' * 32} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_DOCUMENT_BYTES}\r\n\r\n").encode()
    answer, _ = _raw(live, head, timeout=5)  # no body at all: the server must not wait for it
    assert answer.startswith(b"HTTP/1.1 422"), answer[:200]


def test_a_lying_content_length_is_refused_before_reading(live: str, ledger: Ledger) -> None:
    head = b"POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n"
    answer, _ = _raw(live, head, timeout=5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # A metadata document's limit applies before reading, once the address names its hash.
    digest = hashlib.sha256(ledger.metadata["L-OK"]).hexdigest()
    head = f"POST /api/v1/documents/{digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_METADATA_BYTES + 1}\r\n\r\n".encode()
    answer, _ = _raw(live, head, timeout=5)
    assert answer.startswith(b"HTTP/1.1 413") and b"batch metadata" in answer, answer[:300]


def test_an_endless_chunked_body_is_cut_off_at_the_limit(live: str) -> None:
    megabyte = b"x" * (1 << 20)
    chunks = (b"%x\r\n" % len(megabyte) + megabyte + b"\r\n" for _ in range(256))  # 256 MB offered
    head = b"POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, sent = _raw(live, head, chunks, timeout=30)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * (1 << 20)  # the server stopped reading soon after 16 MB


def test_the_same_document_uploaded_concurrently_is_stored_once_intact(live: str, ledger: Ledger) -> None:
    body = ledger.metadata["L-RACE"]
    digest = hashlib.sha256(body).hexdigest()

    def upload(_: int) -> int:
        request = urllib.request.Request(f"{live}/api/v1/documents/{digest}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(upload, range(32)))
    assert set(statuses) <= {200, 201} and 201 in statuses
    store = DocumentStore(ledger.server_settings.documents_dir)
    assert store.get(bytes.fromhex(digest)) == body
    assert not list((ledger.server_settings.documents_dir / "incoming").iterdir())  # no spool file left behind
    assert not [p for p in store.path_of(bytes.fromhex(digest)).parent.iterdir() if p.name.startswith("tmp")]


def _flood(url: str, body: bytes, count: int) -> list[int]:
    """`count` uploads over one connection, each claiming another X-Forwarded-For address."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    statuses = []
    for n in range(count):
        connection.request(
            "POST", "/api/v1/documents", body=body, headers={"X-Forwarded-For": f"203.0.113.{n % 250}, 198.51.100.{n // 250}"}
        )
        answer = connection.getresponse()
        answer.read()
        statuses.append(answer.status)
    connection.close()
    return statuses


def test_x_forwarded_for_does_not_bypass_the_upload_limit_unless_a_proxy_is_configured(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = ledger.metadata["L-OK"]
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    server = WebServer(ledger.server_settings, port=free_loopback_port(), workers=1)
    server.start()
    try:
        statuses = _flood(server.url, body, 2 * UPLOAD_BURST)
    finally:
        server.stop()
    assert statuses[:UPLOAD_BURST] == [200] * UPLOAD_BURST and 429 in statuses  # refills at 10/s meanwhile
    # Behind a proxy the operator names, the address it forwards counts.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
    server = WebServer(ledger.server_settings, port=free_loopback_port(), workers=1)
    server.start()
    try:
        assert set(_flood(server.url, body, 2 * UPLOAD_BURST)) == {200}
    finally:
        server.stop()
