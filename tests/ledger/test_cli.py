"""The `provenance` CLI end to end on a real anvil: every command, human and --json output."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from ledger.identifiers import batch_id

GTIN = "09506000134352"
FARM, COOP, CERTIFIER, OUTSIDER = "node:1", "node:2", "node:3", "node:4"


@pytest.fixture(scope="module", autouse=True)
def organisations(local_ledger):
    """Farm and cooperative are suppliers; the farm holds the GS1 Company Prefix 9506000
    (all the GTINs below); the certifier is accredited for FAIRTRADE."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.models import LicenceScope
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = conn.w3.eth.accounts
    admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
    for index, name, country in [
        (1, "Finca La Esperanza", "CO"),
        (2, "Cooperativa Alto Huila", "CO"),
        (3, "EthicCert Labs", "DE"),
    ]:
        admin.register_actor(accounts[index], name, country)
    admin.grant_supplier(accounts[1])
    admin.grant_supplier(accounts[2])
    admin.accredit(accounts[3], "FAIRTRADE")
    admin.grant_licence(accounts[1], LicenceScope.company_prefix("9506000"))
    return accounts


def register(cli, lot: str = "L-17", quantity: str = "60000", *extra: str, account: str = FARM):
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
        "KGM",
        "--product",
        "Green coffee",
        "--origin",
        "Huila, CO",
        *extra,
    )


def test_batch_register_human_output_and_qr(cli, tmp_path):
    code, out, err = register(cli, "L-17", "60000", "--qr", str(tmp_path / "bag.png"))
    assert code == 0, err
    assert "Registered   lot L-17 of GTIN 09506000134352" in out
    assert "0x" + batch_id(GTIN, "L-17").hex() in out
    assert "http://127.0.0.1:8000/01/09506000134352/10/L-17" in out
    assert (tmp_path / "bag.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_register_json_and_idempotent_rerun(cli, tmp_path, local_ledger):
    doc = tmp_path / "certificate.pdf"
    doc.write_bytes(b"%PDF-1.4 organic certificate")
    code, out, _ = register(cli, "L-18", "100", "--doc", str(doc), "--qr", str(tmp_path / "bag.svg"), "--json")
    first = json.loads(out)
    assert code == 0 and first["status"] == "registered"
    assert {"batch_id", "tx_hash", "url", "block_number"} <= set(first)
    assert (tmp_path / "bag.svg").read_text().lstrip().startswith("<?xml")
    stored = local_ledger.data_dir / "documents" / "sha256"
    assert any(p.read_bytes() == doc.read_bytes() for p in stored.rglob("*") if p.is_file())
    block = local_ledger.block_number()
    code, out, _ = register(cli, "L-18", "100", "--doc", str(doc), "--json")
    again = json.loads(out)
    assert code == 0 and again["status"] == "already_registered"
    assert again["tx_hash"] == first["tx_hash"]
    assert local_ledger.block_number() == block  # nothing sent


def test_batch_register_conflict_names_the_holder(cli, local_ledger):
    register(cli, "L-19", "100")
    block = local_ledger.block_number()
    code, _, err = register(cli, "L-19", "200")
    assert code == 1
    assert "lot L-19 of GTIN 09506000134352 is already registered by Finca La Esperanza" in err
    assert "quantity 100 KGM instead of 200 KGM" in err
    code, _, err = register(cli, "L-19", "100", account=COOP)
    assert code == 1 and "already registered by Finca La Esperanza" in err
    assert local_ledger.block_number() == block


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"--gtin": "09506000134353"}, "Invalid GTIN check digit"),
        ({"--lot": "L" * 21}, "at most 20"),
        ({"--lot": "L 17"}, "no spaces"),
        ({"--quantity": "0"}, "greater than zero"),
        ({"--quantity": "-5"}, "greater than zero"),
        ({"--unit": "kilos"}, "UN/ECE Rec 20"),
    ],
)
def test_bad_batch_input_is_rejected_before_sending(cli, local_ledger, override, message):
    values = {"--gtin": GTIN, "--lot": "L-20", "--quantity": "10", "--unit": "KGM"}
    values.update(override)
    block = local_ledger.block_number()
    args = [item for pair in values.items() for item in pair]
    code, _, err = cli("batch", "register", "--account", FARM, *args, "--product", "Coffee")
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert local_ledger.block_number() == block


def test_unknown_batch(cli, local_ledger):
    block = local_ledger.block_number()
    code, _, err = cli("batch", "transfer", GTIN, "NOPE", "--account", FARM, "--to", COOP)
    assert code == 1
    unknown = "0x" + batch_id(GTIN, "NOPE").hex()
    assert err == f"error: batch {unknown} is not registered on this ledger: check the GTIN and lot\n"
    assert local_ledger.block_number() == block  # nothing sent


def test_handover_transfer_accept_and_show(cli):
    register(cli)
    code, out, err = cli("batch", "transfer", GTIN, "L-17", "--account", FARM, "--to", COOP)
    assert code == 0, err
    assert "Offered lot L-17 of GTIN 09506000134352 to Cooperativa Alto Huila" in out
    code, out, _ = cli("batch", "show", GTIN, "L-17", "--json")
    assert json.loads(out)["pending_custodian"] is not None
    code, out, _ = cli("batch", "accept", GTIN, "L-17", "--account", COOP, "--json")
    assert code == 0 and json.loads(out)["tx_hash"].startswith("0x")
    code, out, _ = cli("batch", "show", GTIN, "L-17")
    assert "Custodian   Cooperativa Alto Huila" in out
    assert "60000 of 60000 KGM left" in out


def pending_and_custodian(cli) -> tuple[str | None, str]:
    """Who lot L-17 is offered to (None when no hand-over waits), and who holds it."""
    code, out, err = cli("batch", "show", GTIN, "L-17", "--json")
    assert code == 0, err
    shown = json.loads(out)
    return shown["pending_custodian"], shown["custodian"]


def test_handover_cancel(cli, organisations):
    farm, coop = organisations[1], organisations[2]
    register(cli)
    # The custodian withdraws its offer, then the recipient declines a second one.
    for canceller in (FARM, COOP):
        code, _, err = cli("batch", "transfer", GTIN, "L-17", "--account", FARM, "--to", COOP)
        assert code == 0, err
        assert pending_and_custodian(cli) == (coop, farm)
        code, out, err = cli("batch", "cancel", GTIN, "L-17", "--account", canceller)
        assert code == 0, err
        assert out.startswith("Cancelled the hand-over of lot L-17 of GTIN 09506000134352; tx 0x")
        assert pending_and_custodian(cli) == (None, farm)  # the farm keeps the lot
    code, _, err = cli("batch", "accept", GTIN, "L-17", "--account", COOP)
    assert code == 1 and err == "error: no hand-over of lot L-17 of GTIN 09506000134352 is waiting to be accepted\n"
    assert pending_and_custodian(cli) == (None, farm)


def test_non_custodian_cannot_move(cli, local_ledger):
    register(cli)
    block = local_ledger.block_number()
    code, _, err = cli("batch", "transfer", GTIN, "L-17", "--account", COOP, "--to", COOP)
    assert code == 1
    assert "Cooperativa Alto Huila" in err and "does not hold lot L-17 of GTIN 09506000134352" in err
    assert "Finca La Esperanza" in err
    assert local_ledger.block_number() == block


def test_step_with_cbv_vocabulary(cli):
    register(cli)
    code, out, _ = cli(
        "batch",
        "step",
        GTIN,
        "L-17",
        "--account",
        FARM,
        "--step",
        "shipping",
        "--location",
        "Neiva, CO",
        "--note",
        "container MSCU 123",
        "--json",
    )
    assert code == 0 and json.loads(out)["step"] == "shipping"
    code, _, err = cli("batch", "step", GTIN, "L-17", "--account", FARM, "--step", "teleporting", "--location", "x")
    assert code == 1 and "not a CBV business step" in err


def test_split_merge_transform_recall(cli):
    register(cli, "L-17", "60000")
    code, out, err = cli(
        "batch", "split", GTIN, "L-17", "--account", FARM, "--into", "L-17A=20000", "--into", "L-17B=10000", "--json"
    )
    assert code == 0, err
    split = json.loads(out)
    assert split["kind"] == "split" and [o["lot"] for o in split["outputs"]] == ["L-17A", "L-17B"]
    code, out, _ = cli("batch", "show", GTIN, "L-17", "--json")
    assert json.loads(out)["remaining_quantity"] == 30000
    code, out, err = cli(
        "batch",
        "merge",
        "--account",
        FARM,
        "--input",
        f"{GTIN}:L-17A",
        "--input",
        f"{GTIN}:L-17B:5000",
        "--gtin",
        GTIN,
        "--lot",
        "L-17M",
    )
    assert code == 0, err
    assert "Merged 2 batches into lot L-17M" in out
    code, out, _ = cli("batch", "show", GTIN, "L-17M", "--json")
    assert json.loads(out)["registered_quantity"] == 25000
    code, out, err = cli(
        "batch",
        "transform",
        "--account",
        FARM,
        "--input",
        f"{GTIN}:L-17M:10000",
        "--output",
        "09506000134369:R-1:8500:KGM:Roasted coffee",
        "--process",
        "roasting",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["outputs"][0]["gtin"] == "09506000134369"
    code, _, err = cli(
        "batch", "transform", "--account", FARM, "--input", f"{GTIN}:L-17M:99999", "--output", "09506000134369:R-2:1:KGM:Roasted"
    )
    assert code == 1 and "has only 15000 left, not 99999" in err
    code, out, _ = cli("batch", "recall", GTIN, "L-17", "--account", FARM, "--reason", "mould found", "--json")
    assert code == 0 and json.loads(out)["reason"] == "mould found"
    code, out, _ = cli("batch", "show", GTIN, "L-17")
    assert "RECALLED" in out


@pytest.fixture
def keystores(local_ledger):
    """Names of keystore accounts the test creates, removed afterwards even when it fails
    (a leftover would make a later `account new NAME` fail for no reason of its own)."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            (local_ledger.data_dir / "keystore" / f"{name}.json").unlink(missing_ok=True)


def test_accounts_new_and_list_never_show_the_key(cli, local_ledger, keystores):
    keystores.append("finca")
    code, out, err = cli("account", "new", "finca")
    assert code == 0, err
    address = out.split(": ")[1].split()[0]
    keystore = local_ledger.data_dir / "keystore" / "finca.json"
    assert stat.S_IMODE(os.stat(keystore).st_mode) == 0o600
    from eth_account import Account

    key = Account.decrypt(json.loads(keystore.read_text()), "correct horse battery").hex()
    assert key.removeprefix("0x") not in keystore.read_text() + out + err
    code, out, _ = cli("account", "list", "--json")
    assert {"name": "finca", "address": address} in json.loads(out)["accounts"]
    code, _, err = cli("account", "new", "finca")
    assert code == 1 and "already exists" in err


def test_keystore_account_signs_with_zero_balance(cli, local_ledger, keystores):
    keystores.append("mill")
    code, out, _ = cli("account", "new", "mill", "--json")
    address = json.loads(out)["address"]
    w3 = local_ledger.web3()
    assert w3.eth.get_balance(address) == 0  # a new key holds no ether
    assert cli("actor", "register", address, "--name", "Moulin de la Vallee", "--country", "FR")[0] == 0
    assert cli("role", "grant", "supplier", "mill")[0] == 0
    assert cli("licence", "sublicense", "mill", "--gtin", GTIN, "--account", FARM)[0] == 0
    code, out, err = register(cli, "MV-1", "5000", "--json", account="mill")
    assert code == 0, err
    # The mill's own key signed and sent it (it is the supplier and the sender), and paid nothing.
    sent = w3.eth.get_transaction(json.loads(out)["tx_hash"])
    assert sent["from"] == address
    code, out, _ = cli("batch", "show", GTIN, "MV-1", "--json")
    assert json.loads(out)["supplier"] == address
    assert w3.eth.get_balance(address) == 0 and w3.eth.get_transaction_count(address) == 1


def test_actor_register_rename_approve_show_and_roles(cli, local_ledger):
    code, out, _ = cli("actor", "register", OUTSIDER, "--name", "Tostadores del Puerto", "--country", "ES", "--json")
    assert code == 0 and json.loads(out)["name"] == "Tostadores del Puerto"
    code, out, err = cli("actor", "rename", "--account", OUTSIDER, "--name", "Tostadores del Puerto SL")
    assert code == 0, err
    assert "Asked the admin to rename Tostadores del Puerto" in out and "nothing changes until approved" in out
    code, out, _ = cli("actor", "show", OUTSIDER, "--json")
    shown = json.loads(out)
    assert shown["name"] == "Tostadores del Puerto"  # not renamed before the admin approves
    assert shown["pending_rename"] == {"name": "Tostadores del Puerto SL", "country": "ES"}
    code, _, err = cli("actor", "approve", OUTSIDER, "--json")
    assert code == 1 and "asks to be renamed 'Tostadores del Puerto SL' (ES)" in err  # never approved unseen
    code, out, err = cli("actor", "approve", OUTSIDER, "--name", "Tostadores del Puerto SL", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "Tostadores del Puerto SL"
    assert cli("role", "grant", "supplier", OUTSIDER)[0] == 0
    assert cli("role", "grant", "certifier", OUTSIDER, "--claim", "ORGANIC")[0] == 0
    code, out, _ = cli("actor", "show", OUTSIDER, "--json")
    shown = json.loads(out)
    assert shown["name"] == "Tostadores del Puerto SL" and shown["supplier"] and shown["accredited_claims"] == ["ORGANIC"]
    assert shown["pending_rename"] is None
    code, out, _ = cli("actor", "show", OUTSIDER)
    assert "Tostadores del Puerto SL (ES)" in out and "ORGANIC" in out
    assert cli("role", "revoke", "certifier", OUTSIDER, "--claim", "ORGANIC")[0] == 0
    assert cli("role", "revoke", "supplier", OUTSIDER, "--json")[0] == 0
    assert cli("actor", "deactivate", OUTSIDER)[0] == 0
    assert cli("actor", "reactivate", OUTSIDER)[0] == 0
    code, _, err = cli("actor", "register", OUTSIDER, "--name", "Again", "--country", "ES")
    assert code == 1 and "already registered" in err
    code, _, err = cli("actor", "register", "node:5", "--name", "X", "--country", "es")
    assert code == 1 and "ISO 3166-1" in err
    code, _, err = cli("role", "grant", "supplier", "node:5", "--account", FARM)
    assert code == 1 and "Finca La Esperanza" in err and "lacks the role this needs (the admin role)" in err


def test_actor_rename_to_another_organisations_name_is_refused(cli, local_ledger):
    block = local_ledger.block_number()
    # Impersonation: a farm renaming itself after the certifier, spelled differently.
    code, _, err = cli("actor", "rename", "--account", FARM, "--name", "ethiccert  LABS.")
    assert code == 1
    assert err.count("\n") == 1  # one sentence
    assert "EthicCert Labs (0x" in err and "already uses this name" in err
    code, _, err = cli("actor", "approve", FARM)
    assert code == 1 and "Finca La Esperanza" in err and "has no profile change awaiting approval" in err
    code, _, err = cli("actor", "rename", "--account", FARM, "--name", "Finca La Esperanza SAS")
    assert code == 0, err
    code, _, err = cli("actor", "approve", FARM, "--account", COOP, "--name", "Finca La Esperanza SAS")
    assert code == 1 and "Cooperativa Alto Huila" in err and "lacks the role this needs (the admin role)" in err
    code, _, err = cli("actor", "rename", "--account", FARM, "--name", "x" * 65)
    assert code == 1 and "1 to 64 bytes" in err
    assert local_ledger.block_number() == block + 1  # only the one valid request was sent


def test_licence_grant_sublicense_list_withdraw(cli, local_ledger):
    bag = "09506000134376"
    code, out, err = cli("licence", "grant", COOP, "--prefix", "9506001")
    assert code == 0, err
    assert "Licensed GS1 Company Prefix 9506001 to Cooperativa Alto Huila" in out
    # The farm holds 9506000: it sub-licenses one GTIN of it to the cooperative (a co-packer).
    code, out, err = cli("licence", "sublicense", COOP, "--gtin", bag, "--account", FARM, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["prefix"] == bag and data["prefix_length"] == 14 and data["sublicence"] is True
    code, out, err = register(cli, "CP-1", "10", account=COOP)  # GTIN 09506000134352: not sub-licensed
    assert code == 1
    assert "Cooperativa Alto Huila (0x" in err and "holds no licence for GTIN 09506000134352" in err
    code, out, err = cli(
        "batch",
        "register",
        "--account",
        COOP,
        "--gtin",
        bag,
        "--lot",
        "CP-1",
        "--quantity",
        "10",
        "--unit",
        "H87",
        "--product",
        "Coffee bag",
    )
    assert code == 0, err
    code, out, _ = cli("licence", "list", "--json")
    rows = {(r["prefix"], r["licensee_name"], r["kind"]) for r in json.loads(out)["licences"]}
    assert rows == {
        ("9506000", "Finca La Esperanza", "root"),
        ("9506001", "Cooperativa Alto Huila", "root"),
        (bag, "Cooperativa Alto Huila", "sub-licence"),
    }
    code, out, _ = cli("licence", "list", "--gtin", bag)
    assert "GTIN 09506000134376" in out and "Finca La Esperanza" in out and "sub-licence" in out
    # Withdrawing the root makes the sub-licence lapse: the co-packer can no longer register.
    code, out, err = cli("licence", "withdraw", "--prefix", "9506000")
    assert code == 0 and "Withdrew GS1 Company Prefix 9506000 from Finca La Esperanza" in out
    code, out, _ = cli("licence", "list", "--lapsed", "--json")
    lapsed = [r for r in json.loads(out)["licences"] if not r["in_force"]]
    assert [r["prefix"] for r in lapsed] == [bag]
    code, _, err = cli(
        "batch",
        "register",
        "--account",
        COOP,
        "--gtin",
        bag,
        "--lot",
        "CP-2",
        "--quantity",
        "10",
        "--unit",
        "H87",
        "--product",
        "Coffee bag",
    )
    assert code == 1 and "holds no licence for GTIN 09506000134376" in err


def test_licence_refusals_are_one_sentence_naming_the_organisation(cli, local_ledger):
    block = local_ledger.block_number()
    code, _, err = cli("licence", "grant", COOP, "--prefix", "95060001")  # inside the farm's 9506000
    assert code == 1 and err.count("\n") == 1
    assert "GS1 Company Prefix 95060001 lies inside the root licence of Finca La Esperanza (0x" in err
    code, _, err = cli("licence", "sublicense", OUTSIDER, "--prefix", "95060001", "--account", COOP)
    assert (
        code == 1
        and "Cooperativa Alto Huila (0x" in err
        and "may not grant or withdraw a licence for GS1 Company Prefix 95060001" in err
    )
    # The contract grants a root licence for the admin and a sub-licence for anyone else:
    # the client refuses the kind the signer did not ask for, before anything is sent.
    code, _, err = cli("licence", "grant", COOP, "--prefix", "95060009", "--account", FARM)
    assert code == 1 and "only the ledger's admin grants root licences; Finca La Esperanza" in err, err
    code, _, err = cli("licence", "sublicense", COOP, "--prefix", "77770001")
    assert code == 1 and "the ledger's admin grants root licences, not sub-licences" in err, err
    code, _, err = cli("licence", "withdraw", "--prefix", "7777")
    assert code == 1 and "no licence is in force for GS1 Company Prefix 7777" in err
    code, _, err = cli("licence", "grant", COOP, "--prefix", "950")
    assert code == 1 and "4 to 12 digits" in err
    code, _, err = cli("licence", "grant", COOP)
    assert code == 1 and "either --prefix DIGITS" in err
    assert local_ledger.block_number() == block


def test_transform_into_an_unlicensed_gtin_is_refused(cli, local_ledger):
    register(cli, "T-1", "100")
    block = local_ledger.block_number()
    code, _, err = cli(
        "batch",
        "transform",
        "--account",
        FARM,
        "--input",
        f"{GTIN}:T-1:10",
        "--output",
        "09506001000007:T-OUT:9:KGM:Roasted coffee",
    )
    assert code == 1 and err.count("\n") == 1
    assert "Finca La Esperanza (0x" in err and "holds no licence for GTIN 09506001000007" in err
    assert local_ledger.block_number() == block


def test_batch_void(cli, local_ledger):
    register(cli, "V-1", "100")
    code, out, err = cli("batch", "void", GTIN, "V-1", "--reason", "registered twice by mistake", "--json")
    assert code == 0, err
    assert json.loads(out)["reason"] == "registered twice by mistake"
    code, out, _ = cli("batch", "show", GTIN, "V-1", "--json")
    assert json.loads(out)["status"] == "voided" and json.loads(out)["void_reason"] == "registered twice by mistake"
    block = local_ledger.block_number()
    code, _, err = cli("batch", "transfer", GTIN, "V-1", "--account", FARM, "--to", COOP)
    assert code == 1 and "lot V-1 of GTIN 09506000134352 was voided by the admin" in err
    code, _, err = register(cli, "V-1", "100")  # the lot stays taken (same content: reported, nothing sent)
    assert code == 0
    register(cli, "V-2", "100")
    block = local_ledger.block_number()
    code, _, err = cli("batch", "void", GTIN, "V-2", "--reason", "mine", "--account", FARM)
    assert code == 1 and "Finca La Esperanza" in err and "lacks the role this needs (the admin role)" in err
    code, _, err = cli("batch", "void", GTIN, "V-2", "--reason", "")
    assert code == 1 and "must not be empty" in err
    assert local_ledger.block_number() == block


def test_recall_with_reason_and_notice_then_review(cli, local_ledger, tmp_path):
    register(cli, "R-1", "100")
    notice = tmp_path / "notice.pdf"
    notice.write_bytes(b"%PDF-1.4 recall notice")
    code, out, err = cli(
        "batch",
        "recall",
        GTIN,
        "R-1",
        "--account",
        FARM,
        "--reason",
        "Mould found in retained sample",
        "--notice",
        str(notice),
        "--json",
    )
    assert code == 0, err
    recalled = json.loads(out)
    assert recalled["reason"] == "Mould found in retained sample" and recalled["reason_hash"] != "0x" + "00" * 32
    code, out, _ = cli("batch", "show", GTIN, "R-1")
    assert "RECALLED (awaiting the admin's review)" in out
    code, out, err = cli("batch", "review-recall", GTIN, "R-1", "--withdraw", "--reason", "Lab retest negative")
    assert code == 0, err
    assert "Withdrew the recall of lot R-1 of GTIN 09506000134352: Lab retest negative" in out
    assert json.loads(cli("batch", "show", GTIN, "R-1", "--json")[1])["recall_state"] == "withdrawn"
    block = local_ledger.block_number()
    code, _, err = cli("batch", "review-recall", GTIN, "R-1", "--uphold", "--reason", "again")
    assert code == 1 and "lot R-1 of GTIN 09506000134352 has no recall awaiting review" in err
    code, _, err = cli("batch", "review-recall", GTIN, "R-1", "--reason", "undecided")
    assert code == 1 and "--uphold (final) or --withdraw" in err
    code, _, err = cli("batch", "recall", GTIN, "R-1", "--account", FARM, "--reason", "é" * 141)  # 282 bytes
    assert code == 1 and "282 bytes of UTF-8; the ledger keeps at most 280" in err
    code, _, err = cli("batch", "recall", GTIN, "R-1", "--account", COOP, "--reason", "not mine")
    assert code == 1 and "only the supplier of lot R-1 of GTIN 09506000134352 or the admin may recall it" in err
    assert "not Cooperativa Alto Huila" in err
    # After a withdrawn recall only the admin may recall again (no freezing by repeated recalls).
    code, _, err = cli("batch", "recall", GTIN, "R-1", "--account", FARM, "--reason", "Mould found again")
    assert code == 1 and "only the admin once a recall of it was withdrawn), not Finca La Esperanza" in err
    assert local_ledger.block_number() == block
    code, out, err = cli("batch", "recall", GTIN, "R-1", "--reason", "Mould found again")
    assert code == 0, err
    code, out, err = cli("batch", "review-recall", GTIN, "R-1", "--uphold", "--reason", "Confirmed by the authority", "--json")
    assert code == 0 and json.loads(out)["upheld"] is True
    shown = cli("batch", "show", GTIN, "R-1")[1]
    assert "RECALLED (upheld by the admin)" in shown
    assert "Recall      Mould found again" in shown and "Review      Confirmed by the authority" in shown


def test_claim_attest_status_revoke(cli):
    register(cli)
    code, out, err = cli(
        "claim",
        "attest",
        "--account",
        CERTIFIER,
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "L-17",
        "--valid-until",
        "2099-01-01",
        "--json",
    )
    assert code == 0, err
    uid = json.loads(out)["uid"]
    code, out, _ = cli("claim", "status", uid, "--json")
    assert json.loads(out)["status"] == "valid"
    code, out, _ = cli("claim", "status", uid)
    assert "EthicCert Labs" in out and "2099-01-01" in out
    code, _, err = cli("claim", "revoke", uid, "--account", FARM, "--reason", "not mine")
    assert code == 1 and "only the issuer of the attestation or the admin may revoke it, not Finca La Esperanza" in err
    code, out, _ = cli("claim", "revoke", uid, "--account", CERTIFIER, "--reason", "re-audit failed", "--json")
    assert code == 0 and json.loads(out)["reason"] == "re-audit failed"
    assert json.loads(cli("claim", "status", uid, "--json")[1])["status"] == "revoked"
    code, _, err = cli("claim", "revoke", uid, "--account", CERTIFIER, "--reason", "twice")
    assert code == 1 and f"the attestation {uid} is already revoked" in err


def test_claim_backdated_before_the_batch_is_refused(cli, local_ledger):
    register(cli)
    block = local_ledger.block_number()
    code, _, err = cli(
        "claim", "attest", "--account", CERTIFIER, "--claim", "FAIRTRADE", "--batch", GTIN, "L-17", "--valid-from", "2020-01-01"
    )
    assert code == 1 and err.count("\n") == 1
    assert "the claim cannot start at 2020-01-01 00:00 UTC: the earliest allowed start is" in err
    assert local_ledger.block_number() == block


def test_claim_set_backdating(cli):
    code, out, err = cli("claim", "set-backdating", "FAIRTRADE", "--days", "30", "--json")
    assert code == 0, err
    assert json.loads(out)["seconds"] == 30 * 86400
    code, _, err = cli("claim", "set-backdating", "FAIRTRADE", "--days", "30", "--account", CERTIFIER)
    assert code == 1 and "EthicCert Labs" in err and "lacks the role" in err


def test_max_backdating_is_read_from_the_events(cli, local_ledger):
    """The contract dropped its maxBackdating view: the writer reads MaxBackdatingSet events."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    admin = LedgerWriter(conn, NodeAccountSigner(conn.w3.eth.accounts[0]))
    assert admin.max_backdating("ORGANIC") == 90 * 86400  # never set: the contract's default
    assert cli("claim", "set-backdating", "ORGANIC", "--days", "30")[0] == 0
    assert cli("claim", "set-backdating", "ORGANIC", "--days", "2")[0] == 0
    assert admin.max_backdating("ORGANIC") == 2 * 86400  # the latest setting
    assert admin.max_backdating("FAIRTRADE") == 90 * 86400


def test_claim_about_an_actor(cli, local_ledger):
    code, out, err = cli("claim", "attest", "--account", CERTIFIER, "--claim", "FAIRTRADE", "--actor", COOP, "--json")
    assert code == 0, err
    assert json.loads(out)["subject_kind"] == "actor"
    block = local_ledger.block_number()
    code, _, err = cli("claim", "attest", "--account", CERTIFIER, "--claim", "FAIRTRADE", "--actor", CERTIFIER)
    assert code == 1 and err.count("\n") == 1
    assert "EthicCert Labs (0x" in err and "cannot attest about EthicCert Labs (0x" in err and "never vouches for itself" in err
    assert local_ledger.block_number() == block


def test_unaccredited_certifier_is_refused(cli, local_ledger):
    register(cli)
    block = local_ledger.block_number()
    code, _, err = cli("claim", "attest", "--account", CERTIFIER, "--claim", "ORGANIC", "--batch", GTIN, "L-17")
    assert code == 1
    assert "EthicCert Labs" in err and "not accredited for this claim" in err
    assert local_ledger.block_number() == block


def test_claim_define(cli):
    code, out, _ = cli("claim", "define", "RAINFOREST_ALLIANCE", "--json")
    assert code == 0 and json.loads(out)["claim"] == "RAINFOREST_ALLIANCE"


@pytest.fixture
def certkey(cli, local_ledger):
    """A certifier with a key of its own (signing offline needs one), keystore `certkey`.
    Removed at the end even when the test fails: a leftover keystore made the next test's
    `account new certkey` fail, print an error instead of JSON, and fail for no reason."""
    code, out, err = cli("account", "new", "certkey", "--json")
    assert code == 0, err
    address = json.loads(out)["address"]
    assert cli("actor", "register", address, "--name", "Offline Certifier", "--country", "DE")[0] == 0
    assert cli("role", "grant", "certifier", address, "--claim", "FAIRTRADE")[0] == 0
    yield address
    (local_ledger.data_dir / "keystore" / "certkey.json").unlink(missing_ok=True)


def test_claim_sign_offline_and_submit(cli, tmp_path, local_ledger, certkey):
    register(cli)
    address = certkey
    signed = tmp_path / "signed.json"
    # Truly offline: the RPC URL points nowhere, the nonce is given.
    code, out, err = cli(
        "--rpc-url",
        "http://127.0.0.1:9",
        "claim",
        "sign",
        "--account",
        "certkey",
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "L-17",
        "--nonce",
        "0",
        "-o",
        str(signed),
    )
    assert code == 0, err
    assert json.loads(signed.read_text())["issuer"] == address
    code, out, err = cli("claim", "submit", str(signed), "--account", OUTSIDER, "--json")
    assert code == 0, err
    uid = json.loads(out)["uid"]
    assert json.loads(cli("claim", "status", uid, "--json")[1])["status"] == "valid"
    code, _, err = cli("claim", "submit", str(signed), "--account", OUTSIDER)
    assert code == 1 and "altered, already used" in err


def test_claim_invalidate_nonces_cancels_a_handed_out_signature(cli, tmp_path, local_ledger, certkey):
    register(cli)
    signed = tmp_path / "handed-out.json"
    code, _, err = cli(
        "claim", "sign", "--account", "certkey", "--claim", "FAIRTRADE", "--batch", GTIN, "L-17", "-o", str(signed)
    )
    assert code == 0, err
    assert json.loads(signed.read_text())["signed_at"] > 0
    code, out, err = cli("claim", "invalidate-nonces", "--account", "certkey", "--json")
    assert code == 0, err
    assert (json.loads(out)["previous_nonce"], json.loads(out)["next_nonce"]) == (0, 1)
    block = local_ledger.block_number()
    code, _, err = cli("claim", "submit", str(signed), "--account", OUTSIDER)
    assert code == 1 and "Offline Certifier" in err and "cancelled with `claim invalidate-nonces`" in err
    code, _, err = cli("claim", "invalidate-nonces", "--account", "certkey", "--next", "1")
    assert code == 1 and err.count("\n") == 1
    assert "the next nonce must be above the current 1 and at most 4,294,967,295 beyond it (asked for 1)" in err
    assert local_ledger.block_number() == block
    code, out, err = cli("claim", "invalidate-nonces", "--account", "certkey", "--next", "10")
    assert code == 0 and "nonces 1 to 9 can no longer be submitted" in out


def _sign(cli, path, *extra: str):
    code, out, err = cli(
        "claim",
        "sign",
        "--account",
        "certkey",
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "L-17",
        "-o",
        str(path),
        "--json",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)


def test_two_signatures_in_a_row_get_different_nonces(cli, tmp_path, local_ledger, certkey):
    register(cli)
    first = _sign(cli, tmp_path / "a.json")
    second = _sign(cli, tmp_path / "b.json", "--valid-until", "2031-01-01")
    assert (first["nonce"], second["nonce"]) == (0, 1)
    for path in ("a.json", "b.json"):  # both usable: neither is dead on arrival
        code, _, err = cli("claim", "submit", str(tmp_path / path), "--account", OUTSIDER)
        assert code == 0, err
    assert _sign(cli, tmp_path / "c.json", "--valid-until", "2032-01-01")["nonce"] == 2


def test_default_invalidation_cancels_signatures_made_with_an_explicit_nonce(cli, tmp_path, local_ledger, certkey):
    register(cli)
    assert _sign(cli, tmp_path / "next.json")["nonce"] == 0
    # Offline, ahead of the ledger (to hand out two at once): nonce 3.
    ahead = _sign(cli, tmp_path / "ahead.json", "--valid-until", "2031-01-01", "--nonce", "3")
    assert ahead["nonce"] == 3 and ahead["warning"] is None
    code, out, err = cli("claim", "invalidate-nonces", "--account", "certkey", "--json")
    assert code == 0, err
    assert (json.loads(out)["previous_nonce"], json.loads(out)["next_nonce"]) == (0, 4)
    for path in ("next.json", "ahead.json"):
        code, _, err = cli("claim", "submit", str(tmp_path / path), "--account", OUTSIDER)
        assert code == 1 and "cancelled with `claim invalidate-nonces`" in err
    assert _sign(cli, tmp_path / "fresh.json", "--valid-until", "2032-01-01")["nonce"] == 4


def test_signing_again_with_a_handed_out_nonce_warns(cli, tmp_path, local_ledger, certkey):
    register(cli)
    _sign(cli, tmp_path / "a.json", "--nonce", "7")
    code, out, err = cli(
        "claim",
        "sign",
        "--account",
        "certkey",
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "L-17",
        "--valid-until",
        "2031-01-01",
        "--nonce",
        "7",
        "-o",
        str(tmp_path / "b.json"),
    )
    assert code == 0, err
    assert "warning: nonce 7 was already handed out" in err
    record = json.loads((local_ledger.data_dir / "signed-nonces.json").read_text())
    assert [7] in record.values()


def test_expired_signature_is_refused(cli, tmp_path, local_ledger, certkey):
    register(cli)
    signed = tmp_path / "late.json"
    past = str(int(time.time()) - 3600)
    code, _, err = cli(
        "claim",
        "sign",
        "--account",
        "certkey",
        "--claim",
        "FAIRTRADE",
        "--batch",
        GTIN,
        "L-17",
        "--deadline",
        past,
        "-o",
        str(signed),
    )
    assert code == 0, err
    block = local_ledger.block_number()
    code, _, err = cli("claim", "submit", str(signed), "--account", OUTSIDER)
    assert code == 1 and "expired at its deadline" in err
    assert local_ledger.block_number() == block


def test_unreachable_rpc_url(cli):
    code, _, err = cli("--rpc-url", "http://127.0.0.1:9", "batch", "show", GTIN, "L-17")
    assert code == 1
    assert "cannot reach the chain at http://127.0.0.1:9" in err


def test_wrong_chain_id(cli):
    code, _, err = cli("--chain-id", "1", "batch", "show", GTIN, "L-17")
    assert code == 1
    assert "has chain id 31337, but the settings expect 1" in err


def test_import_csv_with_row_errors(cli, tmp_path):
    path = tmp_path / "lots.csv"
    rows = ["gtin,lot,quantity,unit,product,origin"]
    rows += [f"{GTIN},IMP-{i:03d},{100 + i},KGM,Green coffee,Huila" for i in range(30)]
    rows += ["09506000134353,BAD-1,5,KGM,Coffee,", f"{GTIN},BAD-2,0,KGM,Coffee,", f"{GTIN},IMP-000,100,KGM,Green coffee,Huila"]
    path.write_text("\n".join(rows) + "\n")
    code, out, _ = cli("batch", "import", str(path), "--chunk-size", "7", "--account", FARM, "--json")
    report = json.loads(out)
    assert code == 1  # some rows failed
    assert report["registered"] == 30
    assert report["transactions"] == 5
    assert [e["line"] for e in report["errors"]] == [32, 33, 34]
    assert "check digit" in report["errors"][0]["error"] and "appears twice" in report["errors"][2]["error"]
    code, out, _ = cli("batch", "import", str(path), "--account", FARM)
    assert "0 registered, 30 already registered (skipped), 3 failed" in out
    assert "Rows not registered" in out


def test_import_csv_rows_of_an_unlicensed_gtin_fail_alone(cli, tmp_path, local_ledger):
    """The bulk path asks the contract (a simulation per GTIN): rows of a GTIN the signer
    holds no licence for fail with its sentence; the licensed rows are registered."""
    path = tmp_path / "mixed.csv"
    rows = ["gtin,lot,quantity,unit,product"] + [f"{GTIN},MX-{i},10,KGM,Coffee" for i in range(3)]
    rows += [f"09506001000007,MX-{i},10,KGM,Coffee" for i in range(2)]  # prefix 9506001: nobody's
    path.write_text("\n".join(rows) + "\n")
    code, out, _ = cli("batch", "import", str(path), "--account", FARM, "--json")
    report = json.loads(out)
    assert code == 1 and report["registered"] == 3 and report["transactions"] == 1
    assert [e["line"] for e in report["errors"]] == [5, 6]
    assert all(
        "Finca La Esperanza (0x" in e["error"] and "holds no licence for GTIN 09506001000007" in e["error"]
        for e in report["errors"]
    )


def test_import_csv_missing_columns(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("gtin,lot\n1,2\n")
    code, _, err = cli("batch", "import", str(path), "--account", FARM)
    assert code == 1 and "lacks the column(s) product, quantity, unit" in err


def test_batch_show_refuses_details_borrowed_from_another_lot(cli, local_ledger, organisations):
    # The attack: a lot registered straight on the contract with another lot's metadata hash.
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.identifiers import lot_bytes

    assert register(cli, "HONEST-1")[0] == 0
    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    honest = next(e for e in conn.logs("BatchRegistered") if e["args"]["batchId"] == batch_id(GTIN, "HONEST-1"))
    borrowed_input = (int(GTIN), lot_bytes("COPY-1"), 100, b"KGM", honest["args"]["metadataHash"])
    tx = conn.contract.functions.registerBatch(borrowed_input).transact({"from": organisations[1]})
    assert conn.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1

    code, out, err = cli("batch", "show", GTIN, "COPY-1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["product"] is None and shown["origin"] is None, out + err
    assert "'HONEST-1'" in shown["details_problem"], shown
    code, out, err = cli("batch", "show", GTIN, "COPY-1")
    assert code == 0 and "do not match this lot" in out and "Green coffee" not in out, out + err
    # The honest lot keeps its details.
    assert json.loads(cli("batch", "show", GTIN, "HONEST-1", "--json")[1])["product"] == "Green coffee"


def test_import_csv_refuses_non_ascii_digits_and_padded_lots(cli, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(
        "gtin,lot,quantity,unit,product\n"
        f"{GTIN},ODD-1,\u0661\u0662,KGM,Coffee\n"  # Arabic-Indic twelve
        f'{GTIN},"ODD-2\n",5,KGM,Coffee\n'
        f"{GTIN},ODD-3,7,KGM,Coffee\n"
    )
    code, out, _ = cli("batch", "import", str(path), "--account", FARM, "--json")
    report = json.loads(out)
    assert code == 1 and report["registered"] == 1, report
    errors = [e["error"] for e in report["errors"]]
    assert "digits 0-9" in errors[0] and "spaces or line breaks" in errors[1], errors


def test_import_csv_names_the_line_of_a_lots_first_appearance(cli, tmp_path):
    """'appears twice' points at the CSV line of the first row, not its place among valid rows."""
    path = tmp_path / "twice.csv"
    path.write_text(
        "gtin,lot,quantity,unit,product\n"
        f"{GTIN},bad lot,5,KGM,Coffee\n"  # line 2: refused (a space), so valid rows start at line 3
        f"{GTIN},TW-1,5,KGM,Coffee\n"
        f"{GTIN},TW-2,5,KGM,Coffee\n"
        f"{GTIN},TW-1,5,KGM,Coffee\n"
    )
    code, out, _ = cli("batch", "import", str(path), "--account", FARM, "--json")
    report = json.loads(out)
    assert code == 1 and report["registered"] == 2, report
    twice = [e for e in report["errors"] if "appears twice" in e["error"]]
    assert twice == [{"line": 5, "error": f"lot TW-1 of GTIN {GTIN} appears twice (line 3)"}], report["errors"]


def test_import_csv_shows_the_first_errors_and_counts_the_rest(cli, tmp_path, monkeypatch):
    """A file whose every row fails does not print a table of every row; --json lists all."""
    import ledger.cli.batches as batches

    monkeypatch.setattr(batches, "SHOWN_ERRORS", 2)
    path = tmp_path / "all-bad.csv"
    path.write_text("gtin,lot,quantity,unit,product\n" + "".join(f"{GTIN},SE-{i},0,KGM,Coffee\n" for i in range(5)))
    code, out, _ = cli("batch", "import", str(path), "--account", FARM)
    assert code == 1 and "... and 3 more rows not registered (--json lists every one)" in out, out
    code, out, _ = cli("batch", "import", str(path), "--account", FARM, "--json")
    assert len(json.loads(out)["errors"]) == 5
