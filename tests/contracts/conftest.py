"""Fixtures for the contract tests: one deployment per module, rewound after every test."""

from __future__ import annotations

import pytest
from brownie import ProvenanceLedger, accounts
from contract_helpers import ADMIN_DELAY, batch_input, setup_ledger


@pytest.fixture(autouse=True)
def isolation(fn_isolation: None) -> None:
    """Every test starts from the module's deployment."""


@pytest.fixture(scope="module")
def admin():
    """The operator holding the default admin role."""
    return accounts[0]


@pytest.fixture(scope="module")
def farm():
    """A supplier licensed for COFFEE_GTIN only."""
    return accounts[1]


@pytest.fixture(scope="module")
def coop():
    """A supplier holding the root licence of company prefix 9501234 (COOP_GTIN...)."""
    return accounts[2]


@pytest.fixture(scope="module")
def roaster():
    """A supplier licensed for ROASTED_GTIN and BAG_GTIN."""
    return accounts[3]


@pytest.fixture(scope="module")
def certifier():
    """A certifier with a local key, so it can sign EIP-712 messages."""
    account = accounts.add()
    accounts[9].transfer(account, "10 ether")
    return account


@pytest.fixture(scope="module")
def outsider():
    """An account that is no registered organisation."""
    return accounts[5]


@pytest.fixture(scope="module")
def member():
    """An account the tests register as a member farm (sub-licensee) when they need one."""
    return accounts[4]


@pytest.fixture(scope="module")
def ledger(admin, farm, coop, roaster, certifier):
    """A ledger with three licensed supplier organisations and a FAIRTRADE/ORGANIC certifier."""
    contract = ProvenanceLedger.deploy(admin, ADMIN_DELAY, {"from": admin})
    setup_ledger(contract, admin, farm, coop, roaster, certifier)
    return contract


@pytest.fixture
def farm_batch(ledger, farm) -> str:
    """60,000 kg of green coffee registered by the farm."""
    return ledger.registerBatch(batch_input("L-17"), {"from": farm}).return_value
