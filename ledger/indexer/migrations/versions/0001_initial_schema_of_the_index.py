"""initial schema of the index

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 07:39:39.088302
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accreditations',
    sa.Column('certifier', sa.String(length=42), nullable=False),
    sa.Column('role', sa.String(length=66), nullable=False),
    sa.Column('granted_event', sa.String(length=80), nullable=False),
    sa.Column('granted_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('certifier', 'role', 'granted_event')
    )
    op.create_table('actors',
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('metadata_hash', sa.String(length=66), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('registered_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('attestations',
    sa.Column('uid', sa.String(length=66), nullable=False),
    sa.Column('issuer', sa.String(length=42), nullable=False),
    sa.Column('subject_kind', sa.String(length=5), nullable=False),
    sa.Column('subject', sa.String(length=66), nullable=False),
    sa.Column('claim', sa.String(length=32), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=False),
    sa.Column('evidence_hash', sa.String(length=66), nullable=False),
    sa.Column('attested_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked_by', sa.String(length=42), nullable=True),
    sa.Column('revocation_reason_hash', sa.String(length=66), nullable=True),
    sa.PrimaryKeyConstraint('uid')
    )
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attestations_issuer'), ['issuer'], unique=False)
        batch_op.create_index(batch_op.f('ix_attestations_subject'), ['subject'], unique=False)

    op.create_table('batches',
    sa.Column('batch_id', sa.String(length=66), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('lot', sa.String(length=20), nullable=False),
    sa.Column('supplier', sa.String(length=42), nullable=False),
    sa.Column('custodian', sa.String(length=42), nullable=False),
    sa.Column('pending_custodian', sa.String(length=42), nullable=True),
    sa.Column('registered_quantity', sa.Numeric(precision=20, scale=0), nullable=False),
    sa.Column('remaining_quantity', sa.Numeric(precision=20, scale=0), nullable=False),
    sa.Column('unit', sa.String(length=3), nullable=False),
    sa.Column('metadata_hash', sa.String(length=66), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('recalled', sa.Boolean(), nullable=False),
    sa.Column('recalled_at', sa.BigInteger(), nullable=True),
    sa.Column('transformation_id', sa.String(length=66), nullable=True),
    sa.Column('registered_at', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('batch_id')
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batches_custodian'), ['custodian'], unique=False)
        batch_op.create_index('ix_batches_gtin_lot', ['gtin', 'lot'], unique=True)
        batch_op.create_index(batch_op.f('ix_batches_registered_at'), ['registered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_batches_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_batches_supplier'), ['supplier'], unique=False)

    op.create_table('blocks',
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('number')
    )
    op.create_table('claim_types',
    sa.Column('claim', sa.String(length=32), nullable=False),
    sa.Column('claim_type_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('claim'),
    sa.UniqueConstraint('role')
    )
    op.create_table('events',
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('batch_id', sa.String(length=66), nullable=True),
    sa.Column('actor', sa.String(length=42), nullable=True),
    sa.Column('args', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tx_hash', 'log_index')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_block_number'), ['block_number'], unique=False)

    op.create_table('indexer_cursor',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('contract', sa.String(length=42), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('roles',
    sa.Column('role', sa.String(length=66), nullable=False),
    sa.Column('account', sa.String(length=42), nullable=False),
    sa.PrimaryKeyConstraint('role', 'account')
    )
    op.create_table('transformation_inputs',
    sa.Column('transformation_id', sa.String(length=66), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.String(length=66), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=20, scale=0), nullable=False),
    sa.PrimaryKeyConstraint('transformation_id', 'position')
    )
    with op.batch_alter_table('transformation_inputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transformation_inputs_batch_id'), ['batch_id'], unique=False)

    op.create_table('transformation_outputs',
    sa.Column('transformation_id', sa.String(length=66), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('transformation_id', 'position')
    )
    with op.batch_alter_table('transformation_outputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transformation_outputs_batch_id'), ['batch_id'], unique=False)

    op.create_table('transformations',
    sa.Column('transformation_id', sa.String(length=66), nullable=False),
    sa.Column('custodian', sa.String(length=42), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('data_hash', sa.String(length=66), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('transformation_id')
    )


def downgrade() -> None:
    op.drop_table('transformations')
    with op.batch_alter_table('transformation_outputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transformation_outputs_batch_id'))

    op.drop_table('transformation_outputs')
    with op.batch_alter_table('transformation_inputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transformation_inputs_batch_id'))

    op.drop_table('transformation_inputs')
    op.drop_table('roles')
    op.drop_table('indexer_cursor')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_block_number'))
        batch_op.drop_index(batch_op.f('ix_events_batch_id'))
        batch_op.drop_index(batch_op.f('ix_events_actor'))

    op.drop_table('events')
    op.drop_table('claim_types')
    op.drop_table('blocks')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_supplier'))
        batch_op.drop_index(batch_op.f('ix_batches_status'))
        batch_op.drop_index(batch_op.f('ix_batches_registered_at'))
        batch_op.drop_index('ix_batches_gtin_lot')
        batch_op.drop_index(batch_op.f('ix_batches_custodian'))

    op.drop_table('batches')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attestations_subject'))
        batch_op.drop_index(batch_op.f('ix_attestations_issuer'))

    op.drop_table('attestations')
    op.drop_table('actors')
    op.drop_table('accreditations')
