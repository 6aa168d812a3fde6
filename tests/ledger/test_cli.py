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
    """Farm and cooperative are suppliers; the certifier is accredited for FAIRTRADE."""
    from ledger.config import Settings
    from ledger.connection import LedgerConnection
    from ledger.signers import NodeAccountSigner
    from ledger.writer import LedgerWriter

    conn = LedgerConnection.open(Settings(data_dir=local_ledger.data_dir, rpc_url=local_ledger.rpc_url))
    accounts = conn.w3.eth.accounts
    admin = LedgerWriter(conn, NodeAccountSigner(accounts[0]))
    for index, name, country in [(1, "Finca La Esperanza", "CO"), (2, "Cooperativa Alto Huila", "CO"), (3, "EthicCert Labs", "DE")]:
        admin.register_actor(accounts[index], name, country)
    admin.grant_supplier(accounts[1])
    admin.grant_supplier(accounts[2])
    admin.accredit(accounts[3], "FAIRTRADE")
    return accounts


def register(cli, lot: str = "L-17", quantity: str = "60000", *extra: str, account: str = FARM):
    return cli("batch", "register", "--account", account, "--gtin", GTIN, "--lot", lot, "--quantity", quantity,
               "--unit", "KGM", "--product", "Green coffee", "--origin", "Huila, CO", *extra)  # fmt: skip


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


def test_unknown_batch(cli):
    code, _, err = cli("batch", "transfer", GTIN, "NOPE", "--account", FARM, "--to", COOP)
    assert code == 1
    assert "lot NOPE" in err or "not registered" in err


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


def test_handover_cancel(cli):
    register(cli)
    cli("batch", "transfer", GTIN, "L-17", "--account", FARM, "--to", COOP)
    code, out, _ = cli("batch", "cancel", GTIN, "L-17", "--account", COOP)
    assert code == 0 and "Cancelled" in out


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
    code, out, _ = cli("batch", "step", GTIN, "L-17", "--account", FARM, "--step", "shipping", "--location", "Neiva, CO",
                       "--note", "container MSCU 123", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["step"] == "shipping"
    code, _, err = cli("batch", "step", GTIN, "L-17", "--account", FARM, "--step", "teleporting", "--location", "x")
    assert code == 1 and "not a CBV business step" in err


def test_split_merge_transform_recall(cli):
    register(cli, "L-17", "60000")
    code, out, err = cli("batch", "split", GTIN, "L-17", "--account", FARM, "--into", "L-17A=20000", "--into", "L-17B=10000", "--json")
    assert code == 0, err
    split = json.loads(out)
    assert split["kind"] == "split" and [o["lot"] for o in split["outputs"]] == ["L-17A", "L-17B"]
    code, out, _ = cli("batch", "show", GTIN, "L-17", "--json")
    assert json.loads(out)["remaining_quantity"] == 30000
    code, out, err = cli("batch", "merge", "--account", FARM, "--input", f"{GTIN}:L-17A", "--input", f"{GTIN}:L-17B:5000",
                         "--gtin", GTIN, "--lot", "L-17M")  # fmt: skip
    assert code == 0, err
    assert "Merged 2 batches into lot L-17M" in out
    code, out, _ = cli("batch", "show", GTIN, "L-17M", "--json")
    assert json.loads(out)["registered_quantity"] == 25000
    code, out, err = cli("batch", "transform", "--account", FARM, "--input", f"{GTIN}:L-17M:10000",
                         "--output", "09506000134369:R-1:8500:KGM:Roasted coffee", "--process", "roasting", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["outputs"][0]["gtin"] == "09506000134369"
    code, _, err = cli("batch", "transform", "--account", FARM, "--input", f"{GTIN}:L-17M:99999",
                       "--output", "09506000134369:R-2:1:KGM:Roasted")  # fmt: skip
    assert code == 1 and "has only 15000 left, not 99999" in err
    code, out, _ = cli("batch", "recall", GTIN, "L-17", "--account", FARM, "--reason", "mould found", "--json")
    assert code == 0 and json.loads(out)["reason"] == "mould found"
    code, out, _ = cli("batch", "show", GTIN, "L-17")
    assert "RECALLED" in out


def test_accounts_new_and_list_never_show_the_key(cli, local_ledger):
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
    (local_ledger.data_dir / "keystore" / "finca.json").unlink()


def test_keystore_account_signs_with_zero_balance(cli, local_ledger):
    code, out, _ = cli("account", "new", "mill", "--json")
    address = json.loads(out)["address"]
    assert cli("actor", "register", address, "--name", "Moulin de la Vallee", "--country", "FR")[0] == 0
    assert cli("role", "grant", "supplier", "mill")[0] == 0
    code, out, err = register(cli, "MV-1", "5000", account="mill")
    assert code == 0, err
    (local_ledger.data_dir / "keystore" / "mill.json").unlink()


def test_actor_register_update_show_and_roles(cli):
    code, out, _ = cli("actor", "register", OUTSIDER, "--name", "Tostadores del Puerto", "--country", "ES", "--json")
    assert code == 0 and json.loads(out)["name"] == "Tostadores del Puerto"
    code, out, _ = cli("actor", "update", "--account", OUTSIDER, "--name", "Tostadores del Puerto SL", "--country", "ES")
    assert code == 0
    assert cli("role", "grant", "supplier", OUTSIDER)[0] == 0
    assert cli("role", "grant", "certifier", OUTSIDER, "--claim", "ORGANIC")[0] == 0
    code, out, _ = cli("actor", "show", OUTSIDER, "--json")
    shown = json.loads(out)
    assert shown["name"] == "Tostadores del Puerto SL" and shown["supplier"] and shown["accredited_claims"] == ["ORGANIC"]
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
    assert code == 1 and "lacks the role" in err


def test_claim_attest_status_revoke(cli):
    register(cli)
    code, out, err = cli("claim", "attest", "--account", CERTIFIER, "--claim", "FAIRTRADE", "--batch", GTIN, "L-17",
                         "--valid-until", "2099-01-01", "--json")  # fmt: skip
    assert code == 0, err
    uid = json.loads(out)["uid"]
    code, out, _ = cli("claim", "status", uid, "--json")
    assert json.loads(out)["status"] == "valid"
    code, out, _ = cli("claim", "status", uid)
    assert "EthicCert Labs" in out and "2099-01-01" in out
    code, out, _ = cli("claim", "revoke", uid, "--account", CERTIFIER, "--reason", "re-audit failed")
    assert code == 0 and "Revoked" in out
    assert json.loads(cli("claim", "status", uid, "--json")[1])["status"] == "revoked"


def test_claim_about_an_actor(cli):
    code, out, err = cli("claim", "attest", "--account", CERTIFIER, "--claim", "FAIRTRADE", "--actor", COOP, "--json")
    assert code == 0, err
    assert json.loads(out)["subject_kind"] == "actor"


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


def _certifier_keystore(cli):
    """A certifier with a key of its own (signing offline needs one)."""
    code, out, _ = cli("account", "new", "certkey", "--json")
    address = json.loads(out)["address"]
    cli("actor", "register", address, "--name", "Offline Certifier", "--country", "DE")
    cli("role", "grant", "certifier", address, "--claim", "FAIRTRADE")
    return address


def test_claim_sign_offline_and_submit(cli, tmp_path, local_ledger):
    register(cli)
    address = _certifier_keystore(cli)
    signed = tmp_path / "signed.json"
    # Truly offline: the RPC URL points nowhere, the nonce is given.
    code, out, err = cli("--rpc-url", "http://127.0.0.1:9", "claim", "sign", "--account", "certkey", "--claim",
                         "FAIRTRADE", "--batch", GTIN, "L-17", "--nonce", "0", "-o", str(signed))  # fmt: skip
    assert code == 0, err
    assert json.loads(signed.read_text())["issuer"] == address
    code, out, err = cli("claim", "submit", str(signed), "--account", OUTSIDER, "--json")
    assert code == 0, err
    uid = json.loads(out)["uid"]
    assert json.loads(cli("claim", "status", uid, "--json")[1])["status"] == "valid"
    code, _, err = cli("claim", "submit", str(signed), "--account", OUTSIDER)
    assert code == 1 and "altered, already used" in err
    (local_ledger.data_dir / "keystore" / "certkey.json").unlink()


def test_expired_signature_is_refused(cli, tmp_path, local_ledger):
    register(cli)
    _certifier_keystore(cli)
    signed = tmp_path / "late.json"
    past = str(int(time.time()) - 3600)
    code, _, err = cli("claim", "sign", "--account", "certkey", "--claim", "FAIRTRADE", "--batch", GTIN, "L-17",
                       "--deadline", past, "-o", str(signed))  # fmt: skip
    assert code == 0, err
    block = local_ledger.block_number()
    code, _, err = cli("claim", "submit", str(signed), "--account", OUTSIDER)
    assert code == 1 and "expired at its deadline" in err
    assert local_ledger.block_number() == block
    (local_ledger.data_dir / "keystore" / "certkey.json").unlink()


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
    rows += [f"09506000134353,BAD-1,5,KGM,Coffee,", f"{GTIN},BAD-2,0,KGM,Coffee,", f"{GTIN},IMP-000,100,KGM,Green coffee,Huila"]
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


def test_import_csv_missing_columns(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("gtin,lot\n1,2\n")
    code, _, err = cli("batch", "import", str(path), "--account", FARM)
    assert code == 1 and "lacks the column(s) product, quantity, unit" in err
