"""Schema migrations of the index (alembic), run when a store is opened.

An upgrade of the project that changes the schema ships a migration in
`ledger/indexer/migrations/versions/`, so an existing index keeps its data.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: object) -> Config:
    """An alembic configuration bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to the newest revision."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
