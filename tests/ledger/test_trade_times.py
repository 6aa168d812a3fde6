"""Claims judged when each lot was traded (ReadModel.times_of_trade, claims_at_trade and
coverage at trade), on SQLite and PostgreSQL, against a chain of its own: two farm lots
certified organic, one certificate revoked before its lot was handed over, the other
after; both lots then merged by their buyer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from test_index import open_store

from ledger.chain import LocalChain, connect, free_loopback_port
from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.conversions import subject_key
from ledger.deploy import ensure_deployed
from ledger.documents import DocumentStore
from ledger.identifiers import complete_gtin
from ledger.indexer.scanner import Scanner
from ledger.indexer.store import IndexStore
from ledger.models import AttestationCreate, BatchCreate, LicenceScope, SubjectKind, TransformationKind
from ledger.queries import ReadModel
from ledger.rpc import rpc_call
from ledger.signers import NodeAccountSigner
from ledger.writer import LedgerWriter, hex0x

FARM_GTIN = complete_gtin("0950600013435")  # prefix 95060001343
BLEND_GTIN = complete_gtin("0950600015555")  # prefix 95060001555


@dataclass
class Trades:
    """The chain, and the block times of what happened, in order."""

    connection: LedgerConnection
    settings: Settings
    before: str  # id of the lot whose certificate was revoked before it was handed over
    after: str  # id of the lot whose certificate was revoked after it was handed over
    blend: str
    times: dict[str, int]


def hex_id(batch: BatchCreate) -> str:
    return "0x" + batch.batch_id.hex()


@pytest.fixture(scope="module")
def trades(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trades]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("trades"), rpc_url=f"http://127.0.0.1:{free_loopback_port()}")
    chain = LocalChain(settings)
    chain.start()
    try:
        ensure_deployed(connect(settings.rpc_url), settings.deployment_file, settings.admin_transfer_delay)
        connection = LedgerConnection.open(settings)
        w3 = connection.w3
        accounts = w3.eth.accounts
        admin = LedgerWriter(connection, NodeAccountSigner(accounts[0]))
        for index, name in ((1, "Finca Prueba"), (2, "Tostador Prueba"), (4, "Certificadora")):
            admin.register_actor(accounts[index], name, "CO")
        for index in (1, 2):
            admin.grant_supplier(accounts[index])
        admin.grant_licence(accounts[1], LicenceScope.company_prefix(FARM_GTIN[1:12]))
        admin.grant_licence(accounts[2], LicenceScope.company_prefix(BLEND_GTIN[1:12]))
        admin.accredit(accounts[4], "ORGANIC")
        farm, roaster, cert = (LedgerWriter(connection, NodeAccountSigner(accounts[i])) for i in (1, 2, 4))
        times: dict[str, int] = {}

        def step(name: str) -> None:
            """The next block comes a minute later: each step has a second of its own."""
            latest = int(w3.eth.get_block("latest")["timestamp"])
            rpc_call(w3, "evm_setNextBlockTimestamp", [latest + 60])
            times[name] = latest + 60

        lots = [
            BatchCreate(gtin=FARM_GTIN, lot=lot, quantity=100, unit="KGM", product="Green coffee") for lot in ("RB-1", "RA-1")
        ]
        uids = []
        for lot in lots:
            farm.register_batch(lot)
            step(f"attest {lot.lot}")
            uids.append(
                cert.attest(AttestationCreate(subject_kind=SubjectKind.BATCH, subject=hex0x(lot.batch_id), claim="ORGANIC"))[0]
            )
        step("revoke before")
        cert.revoke_attestation(bytes.fromhex(uids[0][2:]), "failed audit before sale")
        for lot in lots:
            farm.transfer_custody(lot.batch_id, accounts[2])
            step(f"accept {lot.lot}")
            roaster.accept_custody(lot.batch_id)
        step("revoke after")
        cert.revoke_attestation(bytes.fromhex(uids[1][2:]), "failed audit after sale")
        step("merge")
        blend = BatchCreate(gtin=BLEND_GTIN, lot="BL-1", quantity=200, unit="KGM", product="Blend")
        roaster.transform(TransformationKind.MERGE, [(lot.batch_id, 100) for lot in lots], [blend])
        yield Trades(connection, settings, hex_id(lots[0]), hex_id(lots[1]), hex_id(blend), times)
    finally:
        chain.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def model(request: pytest.FixtureRequest, trades: Trades, tmp_path) -> Iterator[ReadModel]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    store: IndexStore = open_store(request.param, tmp_path, url)
    Scanner(trades.connection.w3, trades.connection.address, trades.connection.deploy_block, store).sync()
    yield ReadModel(store, DocumentStore(trades.settings.documents_dir))
    store.dispose()


def test_time_of_trade_is_the_hand_over_before_the_merge(trades: Trades, model: ReadModel):
    assert model.times_of_trade(trades.blend) == {
        trades.before: trades.times["accept RB-1"],
        trades.after: trades.times["accept RA-1"],
    }  # the product lot itself is judged now: the shopper buys it now


def test_a_claim_revoked_before_trade_is_not_valid_then_and_does_not_count(trades: Trades, model: ReadModel):
    now = trades.times["merge"] + 3600
    found = model.claims_at_trade(trades.blend, now)
    (before,) = found[subject_key(trades.before)]
    (after,) = found[subject_key(trades.after)]
    # Revoked before its lot was handed over: not valid when traded.
    assert (before.status_at_trade, before.status, before.traded_at) == ("revoked", "revoked", trades.times["accept RB-1"])
    # Revoked after: valid when traded, revoked now.
    assert (after.status_at_trade, after.status, after.traded_at) == ("valid", "revoked", trades.times["accept RA-1"])
    # Coverage at trade counts only the lot whose certificate held when it was traded (half the input);
    # judged now, neither counts.
    assert model.coverage(trades.blend, now, at_trade=True) == {"ORGANIC": 0.5}
    assert model.coverage(trades.blend, now) == {}
