"""Fixtures for the contract tests: one deployment per module, rewound after every test."""

from __future__ import annotations

import pytest
from brownie import ProvenanceLedger, accounts

from contract_helpers import ADMIN_DELAY, b32, batch_input, digest


@pytest.fixture(autouse=True)
def isolation(fn_isolation: None) -> None:
    """Every test starts from the module's deployment."""


@pytest.fixture(scope="module")
def admin():
    return accounts[0]


@pytest.fixture(scope="module")
def farm():
    return accounts[1]


@pytest.fixture(scope="module")
def coop():
    return accounts[2]


@pytest.fixture(scope="module")
def roaster():
    return accounts[3]


@pytest.fixture(scope="module")
def certifier():
    """A certifier with a local key, so it can sign EIP-712 messages."""
    account = accounts.add()
    accounts[9].transfer(account, "10 ether")
    return account


@pytest.fixture(scope="module")
def outsider():
    return accounts[5]


@pytest.fixture(scope="module")
def ledger(admin, farm, coop, roaster, certifier):
    """A ledger with three supplier organisations and a FAIRTRADE/ORGANIC certifier."""
    contract = ProvenanceLedger.deploy(admin, ADMIN_DELAY, {"from": admin})
    for account, name, country in [
        (farm, "Finca La Esperanza", "CO"),
        (coop, "Cooperativa Alto Huila", "CO"),
        (roaster, "Tostadores del Puerto", "ES"),
        (certifier, "EthicCert Labs", "DE"),
    ]:
        contract.registerActor(account, name, country.encode(), digest(name), {"from": admin})
    for account in (farm, coop, roaster):
        contract.grantRole(contract.SUPPLIER_ROLE(), account, {"from": admin})
    contract.accreditCertifier(certifier, b32("FAIRTRADE"), {"from": admin})
    contract.accreditCertifier(certifier, b32("ORGANIC"), {"from": admin})
    return contract


@pytest.fixture
def farm_batch(ledger, farm) -> str:
    """60,000 kg of green coffee registered by the farm."""
    return ledger.registerBatch(batch_input("L-17"), {"from": farm}).return_value

