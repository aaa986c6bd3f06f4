"""board progress: the points where each competitor's best public score improved (the progress chart); back-filled

Revision ID: e5f1a3c8d2b6
Revises: c41d7e2a9b85
Create Date: 2026-12-02 18:10:00
"""
import sqlalchemy as sa
from alembic import op

import podium.core.models

revision = 'e5f1a3c8d2b6'
down_revision = 'c41d7e2a9b85'
branch_labels = None
depends_on = None

# The rule of podium.core.board as it is at this revision, in one pass over every challenge.
_OWNER_KIND = "CASE WHEN c.team_size > 1 AND s.team_id IS NOT NULL THEN 'team' ELSE 'user' END"
_OWNER_ID = "CASE WHEN c.team_size > 1 AND s.team_id IS NOT NULL THEN s.team_id ELSE s.user_id END"
_BACKFILL = f"""
INSERT INTO board_progress (challenge_id, owner_kind, owner_id, submission_id, created_at, public_score)
SELECT challenge_id, owner_kind, owner_id, submission_id, created_at, public_score FROM (
  SELECT s.challenge_id, {_OWNER_KIND} AS owner_kind, {_OWNER_ID} AS owner_id, s.id AS submission_id, s.created_at,
         sc.public_score,
         MAX(sc.public_score) OVER (PARTITION BY s.challenge_id, {_OWNER_KIND}, {_OWNER_ID}
                                    ORDER BY s.created_at, s.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
           AS best_before
  FROM submissions s JOIN scores sc ON sc.submission_id = s.id JOIN users u ON u.id = s.user_id
       JOIN challenges c ON c.id = s.challenge_id
  WHERE s.status = 'scored' AND s.disqualified_reason IS NULL AND u.disqualified_reason IS NULL) history
WHERE best_before IS NULL OR public_score > best_before"""


def upgrade() -> None:
    op.create_table('board_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('owner_kind', sa.String(length=8), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('created_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.Column('public_score', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('board_progress', schema=None) as batch_op:
        batch_op.create_index('ix_board_progress_owner', ['challenge_id', 'owner_kind', 'owner_id', 'created_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_board_progress_submission_id'), ['submission_id'], unique=False)
    op.execute(_BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('board_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_board_progress_submission_id'))
        batch_op.drop_index('ix_board_progress_owner')
    op.drop_table('board_progress')
