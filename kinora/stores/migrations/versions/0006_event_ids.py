"""engagement events: the ids already ingested, so a batch sent twice is stored once

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'event_ids',
        sa.Column('event_id', sa.String(128), primary_key=True),
        sa.Column('batch_id', sa.String(40), nullable=False, index=True),
        sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('event_ids')
