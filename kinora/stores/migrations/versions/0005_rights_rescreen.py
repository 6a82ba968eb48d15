"""rights and provenance: a holder-level default policy, remix lineage and watermark content ids on
videos, and the re-screen log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- ``rights_holders.default_policy``: what a holder's works marked ``default`` get (``blocked``,
  ``allowed``, or ``default`` to leave it to the platform regime).
- ``videos.remix_of``: the parent of a remix, so a source's rights carry over to its remixes
  when the registry changes.
- ``videos.content_id``: the invisible watermark's 48-bit payload, so a verifier can find the
  catalog record of a file whose metadata was stripped.
- ``rights_rescreens``: one row per re-screen of the published catalog, with the registry digest
  it screened against (the scheduled flow skips work when the digest has not changed).
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rights_holders') as batch:
        batch.add_column(sa.Column('default_policy', sa.String(16), nullable=False, server_default='default'))
    with op.batch_alter_table('videos') as batch:
        batch.add_column(sa.Column('remix_of', sa.String(40), nullable=True))
        batch.create_index('ix_videos_remix_of', ['remix_of'])
        batch.add_column(sa.Column('content_id', sa.BigInteger, nullable=True))
        batch.create_index('ix_videos_content_id', ['content_id'])
    op.create_table(
        'rights_rescreens',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
        sa.Column('registry_digest', sa.String(64), nullable=False, index=True),
        sa.Column('trigger', sa.String(32), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('checked', sa.Integer, nullable=False, server_default='0'),
        sa.Column('taken_down', sa.Integer, nullable=False, server_default='0'),
    )


def downgrade() -> None:
    op.drop_table('rights_rescreens')
    with op.batch_alter_table('videos') as batch:
        batch.drop_index('ix_videos_content_id')
        batch.drop_column('content_id')
        batch.drop_index('ix_videos_remix_of')
        batch.drop_column('remix_of')
    with op.batch_alter_table('rights_holders') as batch:
        batch.drop_column('default_policy')
