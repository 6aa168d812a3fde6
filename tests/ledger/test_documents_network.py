"""Documents across organisations: four data directories sharing no files, each
organisation signing with its own keystore (never one of anvil's unlocked accounts), a
brand server that gets documents only over the network; and CIDs checked against an
independent implementation."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from multiformats import CID, multihash
from typer.testing import CliRunner

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.cid import cid_of_digest, digest_of_cid
from ledger.cli import app
from ledger.config import Settings
from ledger.deploy import ensure_deployed
from ledger.documents import DocumentStore, evidence_envelope, metadata_hash
from ledger.models import DocumentRef

ROOT = Path(__file__).resolve().parents[2]
GREEN, ROASTED = "09506000134352", "09506000134376"
PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    "content", [b"", b"hi", b'{"gtin":"09506000134352"}', bytes(range(256)) * 100], ids=["empty", "text", "json", "binary"]
)
def test_cid_equals_an_independent_implementation(content: bytes) -> None:
    digest = hashlib.sha256(content).digest()
    expected = str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))
    assert cid_of_digest(digest) == expected
    assert digest_of_cid(expected) == digest


class Org:
    """One organisation's data directory and environment; runs `provenance` in process."""

    def __init__(self, root: Path, name: str, rpc_url: str, contract: str, **settings: str) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.env = {
            "PROVENANCE_DATA_DIR": str(self.dir),
            "PROVENANCE_RPC_URL": rpc_url,
            "PROVENANCE_CONTRACT_ADDRESS": contract,
            "PROVENANCE_KEYSTORE_PASSWORD": PASSWORD,
            "PROVENANCE_ACCOUNT": name,
            "PROVENANCE_PUBLISH_TO": "",
            "PROVENANCE_DOCUMENT_SOURCES": "",
            **settings,
        }
        self.name = name
        self.server: subprocess.Popen[bytes] | None = None
        self.url = ""

    def run(self, *args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, f"{self.name}: provenance {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def json(self, *args: str) -> dict:
        return json.loads(CliRunner().invoke(app, [*args, "--json"], env=self.env, catch_exceptions=False).stdout)

    def serve(self) -> str:
        port = free_loopback_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("PROVENANCE_")}, **self.env}
        self.server = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return self.url
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"{self.name}'s server did not start")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=30)
        self.server = None


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_four_organisations_on_four_data_directories(tmp_path: Path) -> None:
    rpc_url = f"http://127.0.0.1:{free_loopback_port()}"
    chain_settings = Settings(data_dir=tmp_path / "chain", rpc_url=rpc_url)
    chain = LocalChain(chain_settings)
    chain.start()
    orgs: list[Org] = []
    try:
        deployment, _, _ = ensure_deployed(connect(rpc_url), chain_settings.deployment_file, chain_settings.admin_transfer_delay)
        farm, roaster, certifier, brand = (
            Org(tmp_path, n, rpc_url, deployment.address) for n in ("farm", "roaster", "certifier", "brand")
        )
        orgs = [farm, roaster, certifier, brand]
        brand.env["PROVENANCE_ACCOUNT"] = "node:0"  # the brand runs the ledger: its admin
        # Onboarding: each organisation makes its own key on its own machine and sends its address.
        address = {o.name: o.json("account", "new", o.name)["address"] for o in (farm, roaster, certifier)}
        w3 = connect(rpc_url)
        assert not set(a.lower() for a in address.values()) & set(a.lower() for a in w3.eth.accounts)
        brand.run("actor", "register", address["farm"], "--name", "Finca La Esperanza", "--country", "CO")
        brand.run("actor", "register", address["roaster"], "--name", "Tostadores del Sur", "--country", "ES")
        brand.run("actor", "register", address["certifier"], "--name", "EthicCert Labs", "--country", "DE")
        brand.run("role", "grant", "supplier", address["farm"])
        brand.run("role", "grant", "supplier", address["roaster"])
        brand.run("role", "grant", "certifier", address["certifier"], "--claim", "ORGANIC")
        brand.run("role", "grant", "certifier", address["certifier"], "--claim", "FAIRTRADE")
        brand.run("licence", "grant", address["farm"], "--gtin", GREEN)
        brand.run("licence", "grant", address["roaster"], "--gtin", ROASTED)
        assert all(w3.eth.get_balance(a) == 0 for a in address.values())  # zero base fee: no funding needed

        public_doc, private_cert, audit = (
            tmp_path / "harvest-photo.jpg",
            tmp_path / "Juan-Perez-passport.pdf",
            tmp_path / "audit.pdf",
        )
        public_doc.write_bytes(b"\xff\xd8\xff photo of the harvest")
        private_cert.write_bytes(b"%PDF-1.4 passport with the owner's personal data")
        audit.write_bytes(b"%PDF-1.4 organic audit report")
        private_audit = tmp_path / "fairtrade-audit-wages.pdf"
        private_audit.write_bytes(b"%PDF-1.4 fair trade audit: workers' names and wages")
        farm.run(
            "batch",
            "register",
            "--gtin",
            GREEN,
            "--lot",
            "H-1",
            "--quantity",
            "1000",
            "--unit",
            "KGM",
            "--product",
            "Green coffee Caturra",
            "--origin",
            "Huila, CO",
            "--doc",
            str(public_doc),
            "--private-doc",
            str(private_cert),
        )
        uid = certifier.json("claim", "attest", "--claim", "ORGANIC", "--batch", GREEN, "H-1", "--evidence", str(audit))["uid"]
        certifier.run(
            "claim", "attest", "--claim", "FAIRTRADE", "--batch", GREEN, "H-1", "--evidence", str(private_audit), "--private"
        )
        farm.run("batch", "transfer", GREEN, "H-1", "--to", address["roaster"])
        roaster.run("batch", "accept", GREEN, "H-1")
        roaster.run(
            "batch",
            "transform",
            "--input",
            f"{GREEN}:H-1:1000",
            "--output",
            f"{ROASTED}:R-1:800:KGM:Roasted coffee Sur",
            "--process",
            "roasting",
        )

        # Pull: each writer serves its own public documents; the brand has only document_sources.
        sources = ",".join(o.serve() for o in (farm, roaster, certifier))
        brand.env["PROVENANCE_DOCUMENT_SOURCES"] = sources
        brand.run("index")
        brand.serve()
        status, page = _get(f"{brand.url}/01/{ROASTED}/10/R-1")
        text = page.decode()
        assert status == 200
        for shown in ("Roasted coffee Sur", "Green coffee Caturra", "Huila, CO", "Finca La Esperanza", "Tostadores del Sur"):
            assert shown in text, shown
        status, page = _get(f"{brand.url}/01/{GREEN}/10/H-1")
        text = page.decode()
        photo, title, report = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (public_doc, private_cert, audit))
        assert f'href="/api/v1/documents/{photo}"' in text and f'href="/api/v1/documents/{report}"' in text
        assert f'private document 1: held by Finca La Esperanza, sha256 <span class="mono">{title}</span>' in text
        assert _get(f"{brand.url}/api/v1/documents/{photo}") == (200, public_doc.read_bytes())
        assert _get(f"{farm.url}/api/v1/documents/{title}")[0] == 404  # never served, even by its owner
        assert not list((brand.dir / "documents").rglob(title[2:]))
        # The owner hands the private title to an auditor, who checks it against the anchored hash.
        farm.run("documents", "export", title, "-o", str(tmp_path / "for-auditor.pdf"))
        brand.run("documents", "check", str(tmp_path / "for-auditor.pdf"), title)
        _private_documents_stay_private(tmp_path, farm, certifier, brand, text, private_cert, private_audit)

        # Push: the farm publishes to the brand, which is down while the farm writes.
        brand.stop()
        farm.stop()
        farm.env["PROVENANCE_PUBLISH_TO"] = brand.url
        out = farm.run(
            "batch",
            "register",
            "--gtin",
            GREEN,
            "--lot",
            "H-2",
            "--quantity",
            "500",
            "--unit",
            "KGM",
            "--product",
            "Green coffee Bourbon",
            "--origin",
            "Pitalito, CO",
            "--doc",
            str(public_doc),
        )
        assert "`provenance documents push` retries" in out
        status_before = farm.json("documents", "status")["servers"][0]
        assert status_before["pending"] == 2 and "cannot be reached" in status_before["last_error"]
        brand.run("index")
        port = brand.url.rsplit(":", 1)[1]
        brand.url = ""
        env_url = f"http://127.0.0.1:{port}"
        brand.server = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--port", port, "--workers", "1"],
            cwd=ROOT,
            env={**{k: v for k, v in __import__("os").environ.items() if not k.startswith("PROVENANCE_")}, **brand.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while _safe_status(env_url + "/") != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        farm.run("documents", "push")
        assert farm.json("documents", "status")["servers"][0]["pending"] == 0
        # H-1's metadata was anchored before publish_to was set: never queued, and said so.
        assert farm.json("documents", "status")["servers"][0]["never_queued"] == 1
        assert "never queued" in farm.run("documents", "status")
        assert farm.json("documents", "push", "--all")["delivered"] == {env_url: 1}
        assert farm.json("documents", "status")["servers"][0]["never_queued"] == 0
        status, page = _get(f"{env_url}/01/{GREEN}/10/H-2")  # the farm's server is down: only the push brought it
        assert "Green coffee Bourbon" in page.decode() and "Pitalito, CO" in page.decode()

        # Every write that anchors a document pushes it. Every writer's own server is down
        # from here on: what the brand holds, it got by push, never by pull.
        roaster.stop()
        certifier.stop()
        follower = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "index", "--follow"],
            cwd=ROOT,
            env={**{k: v for k, v in __import__("os").environ.items() if not k.startswith("PROVENANCE_")}, **brand.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _pushed_after_every_write(tmp_path, farm, roaster, certifier, brand, env_url, uid)
        finally:
            follower.terminate()
            follower.wait(timeout=30)
    finally:
        for org in orgs:
            org.stop()
        chain.stop()


def _pushed_after_every_write(
    tmp_path: Path, farm: Org, roaster: Org, certifier: Org, brand: Org, brand_url: str, uid: str
) -> None:
    """Transformation (outputs' metadata and note), step note and its file, recall notice,
    revocation notice and a bulk import each reach the brand by push alone."""
    for org in (roaster, certifier):
        org.env["PROVENANCE_PUBLISH_TO"] = brand_url
    waybill, notice, revocation = tmp_path / "waybill.pdf", tmp_path / "recall.pdf", tmp_path / "revocation.pdf"
    waybill.write_bytes(b"%PDF-1.4 waybill Valencia")
    notice.write_bytes(b"%PDF-1.4 recall notice: foreign matter")
    revocation.write_bytes(b"%PDF-1.4 revocation: audit findings")
    out = roaster.run(
        "batch",
        "transform",
        "--input",
        f"{ROASTED}:R-1:200",
        "--output",
        f"{ROASTED}:R-2:180:KGM:Espresso blend Sur",
        "--process",
        "blending",
    )
    assert f"Published 2 document(s) to {brand_url}" in out, out  # the new lot's metadata and the note
    out = roaster.run(
        "batch",
        "step",
        ROASTED,
        "R-2",
        "--step",
        "shipping",
        "--location",
        "Valencia, ES",
        "--note",
        "kept at 18 C",
        "--doc",
        str(waybill),
    )
    assert f"Published 2 document(s) to {brand_url}" in out, out  # the note and the file it names
    out = roaster.run("batch", "recall", ROASTED, "R-2", "--reason", "Foreign matter found", "--notice", str(notice))
    assert f"Published 2 document(s) to {brand_url}" in out, out
    out = certifier.run("claim", "revoke", uid, "--reason", "Audit findings", "--notice", str(revocation))
    assert f"Published 1 document(s) to {brand_url}" in out, out
    rows = tmp_path / "lots.csv"
    rows.write_text(
        "gtin,lot,quantity,unit,product,origin\n"
        + "".join(f'{GREEN},I-{n},100,KGM,Green coffee Geisha {n},"Acevedo, CO"\n' for n in range(3))
    )
    out = farm.run("batch", "import", str(rows))
    assert out.count("Published") == 1 and f"Published 3 document(s) to {brand_url}" in out, out  # one round for the whole file

    held = DocumentStore(brand.dir / "documents")
    refs = lambda *files: [DocumentRef(name=f.name, sha256=hashlib.sha256(f.read_bytes()).hexdigest()).as_json() for f in files]  # noqa: E731
    pushed = {
        "transformation note": metadata_hash({"process": "blending", "kind": "processing"}),
        "step note": metadata_hash({"note": "kept at 18 C", "documents": refs(waybill)}),
        "waybill": hashlib.sha256(waybill.read_bytes()).digest(),
        "recall reason": metadata_hash({"reason": "Foreign matter found", "documents": refs(notice)}),
        "recall notice": hashlib.sha256(notice.read_bytes()).digest(),
        "revocation notice": hashlib.sha256(revocation.read_bytes()).digest(),
    }
    assert {what: held.verify(digest) for what, digest in pushed.items()} == dict.fromkeys(pushed, True)
    for what, digest in pushed.items():
        assert _get(f"{brand_url}/api/v1/documents/{digest.hex()}")[0] == 200, what
    assert "Espresso blend Sur" in _get(f"{brand_url}/01/{ROASTED}/10/R-2")[1].decode()
    assert "Green coffee Geisha 2" in _get(f"{brand_url}/01/{GREEN}/10/I-2")[1].decode()
    for org in (farm, roaster, certifier):
        assert all(server["pending"] == 0 for server in org.json("documents", "status")["servers"]), org.name


def _post(url: str, body: bytes) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _private_documents_stay_private(
    tmp_path: Path, farm: Org, certifier: Org, brand: Org, page: str, passport: Path, audit: Path
) -> None:
    """Anyone holding a copy of a private document (a customs officer, a leaked e-mail)
    cannot make a server take, fetch or serve it: private references are not anchors, and
    private evidence is anchored through a public envelope, never by the file's own hash.
    Its file name is not published either."""
    passport_hex, audit_hex = (hashlib.sha256(f.read_bytes()).hexdigest() for f in (passport, audit))
    assert "Juan-Perez" not in page and "fairtrade-audit-wages" not in page
    # The hash of the private file, its holder, and what it is evidence of (no file name).
    assert re.search(rf'private evidence: [^<]*: held by EthicCert Labs, sha256 <span class="mono">{audit_hex}</span>', page)
    for copy, digest in ((passport, passport_hex), (audit, audit_hex)):
        assert f'href="/api/v1/documents/{digest}"' not in page
        for server in (brand.url, farm.url, certifier.url):
            assert _post(f"{server}/api/v1/documents/{digest}", copy.read_bytes()) == 422, (copy.name, server)
            assert _post(f"{server}/api/v1/documents", copy.read_bytes()) == 422, (copy.name, server)
            assert _get(f"{server}/api/v1/documents/{digest}")[0] == 404, (copy.name, server)
        assert not list((brand.dir / "documents").rglob(digest[2:]))
    assert f'href="/api/v1/documents/{audit_hex}"' not in _get(f"{brand.url}/01/{GREEN}/10/H-1")[1].decode()
    # The public metadata names the passport neutrally, marked private.
    metadata = [
        json.loads(p.read_bytes())
        for p in (brand.dir / "documents" / "sha256").rglob("*")
        if p.is_file() and b'"gtin"' in p.read_bytes()
    ]
    named = [d for m in metadata if m.get("lot") == "H-1" for d in m.get("documents", [])]
    assert {"name": "private document 1", "sha256": passport_hex, "private": True} in named
    assert "Juan-Perez" not in json.dumps(metadata)
    # The auditor handed the private evidence checks it: file -> envelope (fetched from the
    # certifier's server) -> the hash the chain anchors; another file does not pass.
    envelope = metadata_hash(evidence_envelope(bytes.fromhex(audit_hex))).hex()
    certifier.run("documents", "export", audit_hex, "-o", str(tmp_path / "evidence-for-auditor.pdf"))
    assert "private file the evidence envelope" in brand.run(
        "documents", "check", str(tmp_path / "evidence-for-auditor.pdf"), envelope
    )
    brand.run("documents", "check", str(passport), envelope, ok=False)


def _safe_status(url: str) -> int:
    try:
        return _get(url)[0]
    except OSError:
        return 0
