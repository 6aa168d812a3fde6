"""Contract errors become named exceptions with sentences; settings come from file and env."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from ledger import errors
from ledger.artifacts import load_artifact
from ledger.config import Settings
from ledger.errors import ConfigurationError


def test_every_contract_error_has_a_sentence():
    names = {item["name"] for item in load_artifact().abi if item["type"] == "error"}
    known = set(errors.ERROR_CLASSES)
    # Errors of OpenZeppelin internals the ledger cannot reach need no sentence of their own.
    unreachable = {
        "ECDSAInvalidSignature",
        "ECDSAInvalidSignatureLength",
        "ECDSAInvalidSignatureS",
        "InvalidAccountNonce",
        "InvalidShortString",
        "StringTooLong",
        "SafeCastOverflowedUintDowncast",
    }
    assert names - known <= unreachable, names - known - unreachable
    assert {n for n in names if n.startswith("Provenance")} <= known  # the ledger's own: every one


def _decode(signature: str, types: list[str], values: list) -> errors.ContractRevertError:
    data = keccak(text=signature)[:4] + encode(types, values)
    return errors.ErrorDecoder(load_artifact().abi).decode("0x" + data.hex(), Names())


def test_every_ledger_error_decodes_to_a_sentence_without_placeholders():
    for item in load_artifact().abi:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        values = [
            {"address": "0x" + "11" * 20, "bool": False, "string": "x"}.get(t, b"\1" * int(t[5:]) if t.startswith("bytes") else 1)
            for t in types
        ]
        error = _decode(f"{item['name']}({','.join(types)})", types, values)
        assert type(error).error_name == item["name"] or item["name"] not in errors.ERROR_CLASSES
        assert "{" not in str(error) and "None" not in str(error), (item["name"], str(error))


@pytest.mark.parametrize(
    ("signature", "types", "values", "sentence"),
    [
        (
            "ProvenanceNotLicensed(uint64,address)",
            ["uint64", "address"],
            [9506000134376, "0x" + "11" * 20],
            "Finca La Esperanza holds no licence for GTIN 09506000134376: the GTIN's licensee (or the admin) must "
            "grant or sub-license it (`provenance licence grant|sublicense`)",
        ),
        (
            "ProvenanceLicenceOverlaps(uint8,uint64,address)",
            ["uint8", "uint64", "address"],
            [8, 95060001, "0x" + "11" * 20],
            "GS1 Company Prefix 95060001 lies inside the root licence of Finca La Esperanza, which alone may sub-license it",
        ),
        (
            "ProvenanceUnknownLicence(uint8,uint64)",
            ["uint8", "uint64"],
            [14, 9506000134376],
            "no licence is in force for GTIN 09506000134376",
        ),
        (
            "ProvenanceLicenceAlreadyGranted(uint8,uint64,address)",
            ["uint8", "uint64", "address"],
            [7, 614141, "0x" + "11" * 20],
            "GS1 Company Prefix 0614141 is already licensed to Finca La Esperanza",
        ),
        (
            "ProvenanceConflictOfInterest(address,uint8,bytes32)",
            ["address", "uint8", "bytes32"],
            ["0x" + "11" * 20, 0, b"\1" * 32],
            "Finca La Esperanza cannot attest about lot L-17 of GTIN 09506000134352",
        ),
        (
            "ProvenanceConflictOfInterest(address,uint8,bytes32)",
            ["address", "uint8", "bytes32"],
            ["0x" + "11" * 20, 1, b"\0" * 12 + b"\x11" * 20],
            "Finca La Esperanza cannot attest about Finca La Esperanza",
        ),
        (
            "ProvenanceValidFromTooEarly(uint64,uint64)",
            ["uint64", "uint64"],
            [1, 1767225600],
            "the claim cannot start at 1970-01-01 00:00 UTC: the earliest allowed start is 2026-01-01 00:00 UTC",
        ),
        ("ProvenanceBatchVoided(bytes32)", ["bytes32"], [b"\1" * 32], "lot L-17 of GTIN 09506000134352 was voided by the admin"),
        (
            "ProvenanceNoRecallToReview(bytes32)",
            ["bytes32"],
            [b"\1" * 32],
            "lot L-17 of GTIN 09506000134352 has no recall awaiting review",
        ),
        (
            "ProvenanceLicenceOverlaps(uint8,uint64,address)",
            ["uint8", "uint64", "address"],
            [6, 950600, "0x" + "00" * 20],
            "GS1 Company Prefix 950600 cannot be licensed: another root licence lies inside it",
        ),
        (
            "ProvenanceInvalidNonce(uint256,uint256)",
            ["uint256", "uint256"],
            [5, 3],
            "the next nonce must be above the current 5 and at most 4,294,967,295 beyond it (asked for 3)",
        ),
        (
            "ProvenanceRoleNotGrantable(bytes32)",
            ["bytes32"],
            [b"\7" * 32],
            "only the supplier role is granted directly (role 0x0707",
        ),
        (
            "AccessControlUnauthorizedAccount(address,bytes32)",
            ["address", "bytes32"],
            ["0x" + "11" * 20, b"\0" * 32],
            "Finca La Esperanza lacks the role this needs (the admin role)",
        ),
    ],
)
def test_new_errors_name_organisations_lots_and_licences(signature, types, values, sentence):
    assert sentence in str(_decode(signature, types, values))


def test_licence_overlap_with_no_holder_never_names_nobody():
    # holder 0: a root licence lies INSIDE the new one (there is no covering holder to name).
    error = _decode(
        "ProvenanceLicenceOverlaps(uint8,uint64,address)", ["uint8", "uint64", "address"], [6, 950600, "0x" + "00" * 20]
    )
    assert type(error).error_name == "ProvenanceLicenceOverlaps"
    assert "nobody" not in str(error) and "root licence of" not in str(error)


class Names:
    def actor(self, address: str) -> str:
        return {"0x" + "11" * 20: "Finca La Esperanza"}.get(address.lower(), address)

    def batch(self, batch_id: bytes) -> str:
        return "lot L-17 of GTIN 09506000134352"


def test_decoded_error_is_named_and_readable():
    decoder = errors.ErrorDecoder(load_artifact().abi)
    data = keccak(text="ProvenanceBatchAlreadyRegistered(bytes32,address)")[:4] + encode(
        ["bytes32", "address"], [b"\1" * 32, "0x" + "11" * 20]
    )
    error = decoder.decode("0x" + data.hex(), Names())
    assert isinstance(error, errors.BatchAlreadyRegisteredError)
    assert isinstance(error, errors.LedgerError)
    assert str(error) == "lot L-17 of GTIN 09506000134352 is already registered by Finca La Esperanza"
    assert error.arguments["supplier"] == "0x" + "11" * 20


def test_unknown_revert_data_is_still_an_error_without_hex_dump_of_meaning():
    error = errors.ErrorDecoder(load_artifact().abi).decode(b"\xde\xad\xbe\xef")
    assert type(error) is errors.ContractRevertError


def test_settings_precedence_file_then_env_then_override(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('rpc_url = "http://127.0.0.1:7000"\nchain_id = 5\npublic_base_url = "https://id.example.org"\n')
    env = {"PROVENANCE_CONFIG": str(config), "PROVENANCE_CHAIN_ID": "11155111"}
    settings = Settings.from_env(env, public_base_url="https://override.example.org")
    assert settings.rpc_url == "http://127.0.0.1:7000"
    assert settings.chain_id == 11155111
    assert settings.public_base_url == "https://override.example.org"


def test_config_file_errors_are_clear(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text("rpc_urll = 'x'\n")
    with pytest.raises(ConfigurationError, match="unknown settings: rpc_urll"):
        Settings.from_env({"PROVENANCE_CONFIG": str(bad)})
    with pytest.raises(ConfigurationError, match="does not exist"):
        Settings.from_env({"PROVENANCE_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigurationError, match="rpc_url must look like"):
        Settings.from_env({"PROVENANCE_RPC_URL": "localhost:8545"})


def test_a_connection_lost_inside_a_command_is_one_clear_line_not_a_traceback(capsys):
    """Found by review: the chain killed during `batch import` surfaced, from the bulk
    path's threads, as requests' ConnectionError with a raw traceback."""
    import requests
    import typer

    from ledger.cli.common import handles_errors

    @handles_errors
    def command() -> None:
        raise requests.exceptions.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=8546): connection refused")

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert "the chain stopped answering (ConnectionError" in err and "run again" in err
    assert "Traceback" not in err
