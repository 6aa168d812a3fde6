"""Alembic environment of the index store: run by `IndexStore` with its own connection."""

from __future__ import annotations

from alembic import context

from ledger.indexer.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
