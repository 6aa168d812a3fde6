"""brownie run scripts/register_batch.py main GTIN LOT QUANTITY UNIT PRODUCT [ORIGIN] --network provenance-local

A supplier registers a batch (signing as $PROVENANCE_ACCOUNT, a keystore name or node:N).
A thin wrapper over `ledger`; prints the batch id, transaction and page URL.
"""

from ledger.config import Settings
from ledger.connection import LedgerConnection
from ledger.models import BatchCreate
from ledger.signers import resolve_signer
from ledger.writer import LedgerWriter


def main(gtin: str, lot: str, quantity: str, unit: str, product: str, origin: str | None = None) -> None:
    settings = Settings.from_env()
    connection = LedgerConnection.open(settings)
    writer = LedgerWriter(connection, resolve_signer(settings, connection.w3))
    batch = BatchCreate(gtin=gtin, lot=lot, quantity=int(quantity), unit=unit, product=product, origin=origin)
    result = writer.register_batch(batch)
    print(f"{result.status}: {result.batch_id}")
    print(f"transaction {result.tx_hash} block {result.block_number}")
    print(f"page {result.url}")
