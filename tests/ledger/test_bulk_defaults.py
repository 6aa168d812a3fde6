"""The CLI's bulk defaults agree with the bulk path's, and fit the chain's limits."""

from __future__ import annotations

import inspect


def test_the_import_commands_default_chunk_is_the_bulk_paths():
    # The CLI writes the number out (importing ledger.bulk would load web3 for --help).
    from ledger.bulk import DEFAULT_CHUNK
    from ledger.cli.batches import import_csv

    assert inspect.signature(import_csv).parameters["chunk_size"].default == DEFAULT_CHUNK


def test_a_full_chunk_stays_under_the_per_transaction_gas_cap():
    from ledger.bulk import BULK_CALL_OVERHEAD, DEFAULT_CHUNK, GAS_PER_BULK_BATCH, TX_GAS_CAP

    assert BULK_CALL_OVERHEAD + GAS_PER_BULK_BATCH * DEFAULT_CHUNK <= TX_GAS_CAP
