"""board entries: each competitor's ranking entries, board versions, the dashboard's index; back-filled

Revision ID: c41d7e2a9b85
Revises: d7e3a9b2c5f1
Create Date: 2026-12-02 13:20:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import podium.core.models

revision = 'c41d7e2a9b85'
down_revision = 'd7e3a9b2c5f1'
branch_labels = None
depends_on = None

# The rules of podium.core.board as they are at this revision, in one pass over every challenge: the
# migration must not follow later changes of the code.
_OWNER_KIND = "CASE WHEN c.team_size > 1 AND s.team_id IS NOT NULL THEN 'team' ELSE 'user' END"
_OWNER_ID = "CASE WHEN c.team_size > 1 AND s.team_id IS NOT NULL THEN s.team_id ELSE s.user_id END"
_PER_OWNER = f"PARTITION BY s.challenge_id, {_OWNER_KIND}, {_OWNER_ID}"
_RANKED = f"""
SELECT s.challenge_id, {_OWNER_KIND} AS owner_kind, {_OWNER_ID} AS owner_id, s.id AS submission_id,
       sc.public_score, sc.private_score, s.created_at, s.is_final,
       ROW_NUMBER() OVER ({_PER_OWNER} ORDER BY sc.public_score DESC, s.created_at, s.id) AS rn,
       COUNT(*) OVER ({_PER_OWNER}) AS entries,
       MAX(CASE WHEN s.is_final THEN 1 ELSE 0 END) OVER ({_PER_OWNER}) AS has_final
FROM submissions s JOIN scores sc ON sc.submission_id = s.id JOIN users u ON u.id = s.user_id
     JOIN challenges c ON c.id = s.challenge_id
WHERE s.status = 'scored' AND s.disqualified_reason IS NULL AND u.disqualified_reason IS NULL
"""
_INSERT = ("INSERT INTO board_entries (challenge_id, board, owner_kind, owner_id, submission_id, order_score, "
           "public_score, private_score, created_at, entries) ")
_PUBLIC = _INSERT + f"""
SELECT challenge_id, 'public', owner_kind, owner_id, submission_id, -public_score, public_score, private_score,
       created_at, entries FROM ({_RANKED}) ranked WHERE rn = 1"""
_PRIVATE = _INSERT + f"""
SELECT challenge_id, 'private', owner_kind, owner_id, submission_id, -private_score, public_score, private_score,
       created_at, entries FROM (
  SELECT r.*, ROW_NUMBER() OVER (PARTITION BY challenge_id, owner_kind, owner_id
                                 ORDER BY private_score DESC, created_at, submission_id) AS prn
  FROM ({_RANKED}) r WHERE (has_final = 1 AND is_final) OR (has_final = 0 AND rn <= 2)) judged
WHERE prn = 1"""


def upgrade() -> None:
    op.create_table('board_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('board', sa.String(length=8), nullable=False),
    sa.Column('owner_kind', sa.String(length=8), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('order_score', sa.Float(), nullable=False),
    sa.Column('public_score', sa.Float(), nullable=False),
    sa.Column('private_score', sa.Float(), nullable=False),
    sa.Column('created_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('challenge_id', 'board', 'owner_kind', 'owner_id', name='uq_board_entries_owner')
    )
    with op.batch_alter_table('board_entries', schema=None) as batch_op:
        batch_op.create_index('ix_board_entries_rank', ['challenge_id', 'board', 'order_score', 'created_at',
                                                        'submission_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_board_entries_submission_id'), ['submission_id'], unique=False)
    op.create_table('board_versions',
    sa.Column('challenge_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', podium.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('challenge_id')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_challenge_recent', ['challenge_id', 'id'], unique=False)
    op.execute(_PUBLIC)
    op.execute(_PRIVATE)
    now = datetime.now(UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does
    op.get_bind().execute(sa.text("INSERT INTO board_versions (challenge_id, version, changed_at) "
                                  "SELECT id, 1, :now FROM challenges"), {"now": now})


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_challenge_recent')
    op.drop_table('board_versions')
    with op.batch_alter_table('board_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_board_entries_submission_id'))
        batch_op.drop_index('ix_board_entries_rank')
    op.drop_table('board_entries')
