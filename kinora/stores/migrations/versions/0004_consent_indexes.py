"""indexes for consent checks at scale: ledger by cameo, ledger by actor, the feed's order

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Measured with benchmarks/consent.py (100,000 cameos, 1,000,000 grants): without the ledger index
every batch of consent checks scanned the whole ledger to find each cameo's latest grant; without
the feed index every feed page sorted every live video.
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_consent_ledger_cameo_action_seq', 'consent_ledger', ['cameo_id', 'action', 'seq'])
    op.create_index('ix_consent_ledger_actor_id', 'consent_ledger', ['actor_id'])
    op.create_index('ix_videos_published_at_id', 'videos', ['published_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_videos_published_at_id', table_name='videos')
    op.drop_index('ix_consent_ledger_actor_id', table_name='consent_ledger')
    op.drop_index('ix_consent_ledger_cameo_action_seq', table_name='consent_ledger')
