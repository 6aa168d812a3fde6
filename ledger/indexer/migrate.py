"""Schema migrations of the index (alembic), run when a store is opened.

An upgrade of the project that changes the schema ships a migration in
`ledger/indexer/migrations/versions/`, so an existing index keeps its data.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: An index upgraded from before this revision has its derived tables rebuilt from its
#: stored events (revision 0003 added tables and columns only events can fill: licences,
#: name history, recall reviews, voiding, reasons).
REPLAY_BEFORE = "0003"


def alembic_config(connection: object) -> Config:
    """An alembic configuration bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> str | None:
    """Bring the store's schema to the newest revision; returns the revision it had
    (None for a new store)."""
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(alembic_config(connection), "head")
    return before
