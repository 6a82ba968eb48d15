"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=80), nullable=True),
    sa.Column('requester_id', sa.String(length=40), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('video_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_status'), ['status'], unique=False)

    op.create_table('rights_holders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights_holders')),
    sa.UniqueConstraint('name', name=op.f('uq_rights_holders_name'))
    )
    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('handle', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('handle', name=op.f('uq_users_handle'))
    )
    op.create_table('cameos',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('handle', sa.String(length=64), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('permission', sa.String(length=16), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('restrictions', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_cameos_owner_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameos')),
    sa.UniqueConstraint('handle', name=op.f('uq_cameos_handle'))
    )
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_decisions_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_job_id'), ['job_id'], unique=False)

    op.create_table('follows',
    sa.Column('follower_id', sa.String(length=40), nullable=False),
    sa.Column('followee_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['followee_id'], ['users.id'], name=op.f('fk_follows_followee_id_users')),
    sa.ForeignKeyConstraint(['follower_id'], ['users.id'], name=op.f('fk_follows_follower_id_users')),
    sa.PrimaryKeyConstraint('follower_id', 'followee_id', name=op.f('pk_follows'))
    )
    op.create_table('rights_works',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('policy', sa.String(length=16), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], name=op.f('fk_rights_works_holder_id_rights_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rights_works')),
    sa.UniqueConstraint('holder_id', 'name', name='uq_rights_works_holder_name')
    )
    op.create_table('videos',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('creator_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=80), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('fps', sa.Integer(), nullable=False),
    sa.Column('model_family', sa.String(length=32), nullable=False),
    sa.Column('model_version', sa.String(length=120), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('media_key', sa.String(length=300), nullable=False),
    sa.Column('thumbnail_key', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('cameo_ids', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unpublished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creator_id'], ['users.id'], name=op.f('fk_videos_creator_id_users')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_videos_job_id_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_videos')),
    sa.UniqueConstraint('job_id', name=op.f('uq_videos_job_id'))
    )
    op.create_table('cameo_approvals',
    sa.Column('cameo_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cameo_id'], ['cameos.id'], name=op.f('fk_cameo_approvals_cameo_id_cameos')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_cameo_approvals_user_id_users')),
    sa.PrimaryKeyConstraint('cameo_id', 'user_id', name=op.f('pk_cameo_approvals'))
    )
    op.create_table('consent_ledger',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cameo_id', sa.String(length=40), nullable=False),
    sa.Column('actor_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cameo_id'], ['cameos.id'], name=op.f('fk_consent_ledger_cameo_id_cameos')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_consent_ledger'))
    )


def downgrade() -> None:
    op.drop_table('consent_ledger')
    op.drop_table('cameo_approvals')
    op.drop_table('videos')
    op.drop_table('rights_works')
    op.drop_table('follows')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_job_id'))

    op.drop_table('decisions')
    op.drop_table('cameos')
    op.drop_table('users')
    op.drop_table('rights_holders')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_jobs_campaign_id'))

    op.drop_table('jobs')
