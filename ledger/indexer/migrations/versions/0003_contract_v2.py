"""ledger contract v2: licences, voided batches, recall reasons and reviews, governed names
(pending requests, name history), revocation reasons, nonces, maximum backdating, events
set aside; quantities exact up to 2^64 - 1 on SQLite

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 15:40:00

An index built for contract v1 indexes another ledger (v2 is a new deployment at a new
address), so `IndexStore.cursor` refuses it anyway; the upgrade still keeps the data
intact, so an old index stays readable.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

QUANTITIES = (('batches', 'registered_quantity'), ('batches', 'remaining_quantity'), ('transformation_inputs', 'quantity'))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.create_table('actor_names',
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('since', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('address', 'block_number', 'log_index')
    )
    op.create_table('licences',
    sa.Column('granted_event', sa.String(length=80), nullable=False),
    sa.Column('key', sa.BigInteger(), nullable=False),
    sa.Column('prefix_length', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=14), nullable=False),
    sa.Column('licensee', sa.String(length=42), nullable=False),
    sa.Column('grantor', sa.String(length=42), nullable=False),
    sa.Column('parent_key', sa.BigInteger(), nullable=False),
    sa.Column('granted_block', sa.BigInteger(), nullable=False),
    sa.Column('granted_tx', sa.String(length=66), nullable=False),
    sa.Column('granted_at', sa.BigInteger(), nullable=False),
    sa.Column('withdrawn_block', sa.BigInteger(), nullable=True),
    sa.Column('withdrawn_tx', sa.String(length=66), nullable=True),
    sa.Column('withdrawn_at', sa.BigInteger(), nullable=True),
    sa.Column('withdrawn_by', sa.String(length=42), nullable=True),
    sa.Column('lapsed_at', sa.BigInteger(), nullable=True),
    sa.Column('in_force', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('granted_event')
    )
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licences_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_licences_licensee'), ['licensee'], unique=False)
    op.create_table('issuer_nonces',
    sa.Column('issuer', sa.String(length=42), nullable=False),
    sa.Column('next_nonce', sa.Text(), nullable=False),
    sa.Column('invalidated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('issuer')
    )
    op.create_table('set_aside',
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('stage', sa.String(length=6), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tx_hash', 'log_index')
    )
    with op.batch_alter_table('set_aside', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_set_aside_block_number'), ['block_number'], unique=False)

    with op.batch_alter_table('actors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('requested_country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('requested_metadata_hash', sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column('requested_at', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revocation_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('claim_types', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_backdating', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        # Existing rows are v1 batches: a recalled one is simply "recalled" (v1 had no review).
        batch_op.add_column(sa.Column('recall_state', sa.String(length=10), nullable=False, server_default='none'))
        for name, type_ in (('recalled_by', sa.String(length=42)), ('recall_reason', sa.Text()),
                            ('recall_reason_hash', sa.String(length=66)), ('recall_tx_hash', sa.String(length=66)),
                            ('reviewed_at', sa.BigInteger()), ('reviewed_by', sa.String(length=42)),
                            ('review_reason', sa.Text()), ('review_tx_hash', sa.String(length=66)),
                            ('voided_at', sa.BigInteger()), ('voided_by', sa.String(length=42)),
                            ('void_reason', sa.Text()), ('void_tx_hash', sa.String(length=66))):
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.alter_column('recall_state', server_default=None)
    op.execute("UPDATE batches SET recall_state = 'recalled' WHERE recalled")

    if sqlite:
        # SQLite: quantities become 20 zero-padded digits (see schema.Quantity).
        for table, column in QUANTITIES:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.Numeric(precision=20, scale=0), type_=sa.String(length=20),
                                      existing_nullable=False)
            op.execute(f"UPDATE {table} SET {column} = substr('00000000000000000000' || CAST(CAST({column} AS INTEGER) AS TEXT), -20, 20)")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        for table, column in QUANTITIES:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.String(length=20), type_=sa.Numeric(precision=20, scale=0),
                                      existing_nullable=False, postgresql_using=None)
    with op.batch_alter_table('batches', schema=None) as batch_op:
        for name in ('void_tx_hash', 'void_reason', 'voided_by', 'voided_at', 'review_tx_hash', 'review_reason', 'reviewed_by',
                     'reviewed_at', 'recall_tx_hash', 'recall_reason_hash', 'recall_reason', 'recalled_by', 'recall_state'):
            batch_op.drop_column(name)
    with op.batch_alter_table('claim_types', schema=None) as batch_op:
        batch_op.drop_column('max_backdating')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_column('revocation_reason')
    with op.batch_alter_table('actors', schema=None) as batch_op:
        for name in ('requested_at', 'requested_metadata_hash', 'requested_country', 'requested_name'):
            batch_op.drop_column(name)
    with op.batch_alter_table('set_aside', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_set_aside_block_number'))
    op.drop_table('set_aside')
    op.drop_table('issuer_nonces')
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licences_licensee'))
        batch_op.drop_index(batch_op.f('ix_licences_key'))
    op.drop_table('licences')
    op.drop_table('actor_names')
