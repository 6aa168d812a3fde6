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
    unreachable = {"ECDSAInvalidSignature", "ECDSAInvalidSignatureLength", "ECDSAInvalidSignatureS",
                   "InvalidAccountNonce", "InvalidShortString", "StringTooLong", "SafeCastOverflowedUintDowncast"}  # fmt: skip
    assert names - known <= unreachable, names - known - unreachable


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
