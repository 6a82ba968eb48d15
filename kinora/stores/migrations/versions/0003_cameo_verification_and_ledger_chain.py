"""cameo verification, reference media, approvals per video, hash-chained ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Ledger entries written before this revision have no hash or signature; Kinora seals them, in seq
order, the first time it opens the store with its ledger key (kinora.trust.ledger.seal_unsealed).
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_approval', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('attestation', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('media', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('cameo_challenges',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('handle', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('digits', sa.String(length=16), nullable=False),
    sa.Column('head_turns', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_cameo_challenges_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameo_challenges'))
    )
    op.create_table('video_cameo_uses',
    sa.Column('video_id', sa.String(length=40), nullable=False),
    sa.Column('cameo_id', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('requester_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cameo_id'], ['cameos.id'], name=op.f('fk_video_cameo_uses_cameo_id_cameos')),
    sa.PrimaryKeyConstraint('video_id', 'cameo_id', name=op.f('pk_video_cameo_uses'))
    )
    with op.batch_alter_table('video_cameo_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_cameo_uses_cameo_id'), ['cameo_id'], unique=False)
    with op.batch_alter_table('consent_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('entry_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('signature', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_head'))
    )
    # The genesis head: no entries sealed yet. Appenders lock this row (UPDATE) before reading it,
    # which serialises appends on SQLite and PostgreSQL alike.
    op.execute("INSERT INTO ledger_head (id, seq, count, entry_hash, signature, updated_at) "
               "VALUES (1, 0, 0, '" + "0" * 64 + "', '', CURRENT_TIMESTAMP)")
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unpublished_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_column('unpublished_reason')
    op.drop_table('ledger_head')
    with op.batch_alter_table('consent_ledger', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('signature')
        batch_op.drop_column('entry_hash')
        batch_op.drop_column('prev_hash')
    with op.batch_alter_table('video_cameo_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_cameo_uses_cameo_id'))
    op.drop_table('video_cameo_uses')
    op.drop_table('cameo_challenges')
    with op.batch_alter_table('cameos', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('media')
        batch_op.drop_column('attestation')
        batch_op.drop_column('require_approval')
