"""feed: videos each user hid or reported, so the feed never shows them again

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hidden_videos',
        sa.Column('user_id', sa.String(64), primary_key=True),
        sa.Column('video_id', sa.String(64), primary_key=True),
        sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('hidden_videos')
