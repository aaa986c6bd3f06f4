"""teams: challenges.team_size, teams, team_members, team_events, submissions.team_id

Revision ID: b3c1f0a7e9d2
Revises: 7ad1ceb77a17
Create Date: 2026-12-02 07:30:00
"""
import sqlalchemy as sa
from alembic import op

import podium.core.models

revision = 'b3c1f0a7e9d2'
down_revision = '7ad1ceb77a17'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_size', sa.Integer(), server_default='1', nullable=False))
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_key', sa.String(length=64), nullable=False),
    sa.Column('join_code', sa.String(length=16), nullable=False),
    sa.Column('created_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('challenge_id', 'name_key'),
    sa.UniqueConstraint('join_code')
    )
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teams_challenge_id'), ['challenge_id'], unique=False)
    op.create_table('team_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('joined_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('challenge_id', 'user_id')
    )
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_members_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_team_members_user_id'), ['user_id'], unique=False)
    op.create_table('team_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_team', sa.String(length=64), nullable=True),
    sa.Column('to_team', sa.String(length=64), nullable=True),
    sa.Column('created_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('team_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_events_challenge_id'), ['challenge_id'], unique=False)
    # A plain ADD COLUMN, no table copy, so the partial indexes of submissions stay exactly as they are
    # (SQLite accepts a REFERENCES clause on ADD COLUMN, though not a separate ADD CONSTRAINT).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE submissions ADD COLUMN team_id INTEGER REFERENCES teams (id)')
    else:
        op.add_column('submissions', sa.Column('team_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_submissions_team_id_teams', 'submissions', 'teams', ['team_id'], ['id'])
    op.create_index(op.f('ix_submissions_team_id'), 'submissions', ['team_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_submissions_team_id'), table_name='submissions')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('team_id')
    op.drop_table('team_events')
    op.drop_table('team_members')
    op.drop_table('teams')
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.drop_column('team_size')
