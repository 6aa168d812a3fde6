"""index freshness (head seen by the last sync, and when); attestation transactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:20:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('indexer_cursor') as batch:
        batch.add_column(sa.Column('head_seen', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('checked_at', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('attestations') as batch:
        batch.add_column(sa.Column('tx_hash', sa.String(length=66), nullable=True))
        batch.add_column(sa.Column('revoked_tx_hash', sa.String(length=66), nullable=True))
    # Fill the new columns from the stored events, so an upgraded index needs no rebuild.
    bind = op.get_bind()
    events = sa.table('events', sa.column('tx_hash'), sa.column('name'), sa.column('args'))
    attestations = sa.table('attestations', sa.column('uid'), sa.column('tx_hash'), sa.column('revoked_tx_hash'))
    for name, column in (('Attested', 'tx_hash'), ('AttestationRevoked', 'revoked_tx_hash')):
        rows = bind.execute(sa.select(events.c.tx_hash, events.c.args).where(events.c.name == name)).all()
        for tx_hash, args in rows:
            uid = json.loads(args)['uid']
            bind.execute(attestations.update().where(attestations.c.uid == uid).values({column: tx_hash}))


def downgrade() -> None:
    with op.batch_alter_table('attestations') as batch:
        batch.drop_column('revoked_tx_hash')
        batch.drop_column('tx_hash')
    with op.batch_alter_table('indexer_cursor') as batch:
        batch.drop_column('checked_at')
        batch.drop_column('head_seen')
