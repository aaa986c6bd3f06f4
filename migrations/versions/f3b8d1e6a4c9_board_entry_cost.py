"""board entry cost: each board row carries its submission's params and FLOPs (the cost views read the board alone)

Revision ID: f3b8d1e6a4c9
Revises: e5f1a3c8d2b6
Create Date: 2026-12-02 18:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'f3b8d1e6a4c9'
down_revision = 'e5f1a3c8d2b6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('board_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('flops_per_input', sa.BigInteger(), nullable=True))
    op.execute("UPDATE board_entries SET "
               "params = (SELECT s.params FROM submissions s WHERE s.id = board_entries.submission_id), "
               "flops_per_input = (SELECT s.flops_per_input FROM submissions s WHERE s.id = board_entries.submission_id)")


def downgrade() -> None:
    with op.batch_alter_table('board_entries', schema=None) as batch_op:
        batch_op.drop_column('flops_per_input')
        batch_op.drop_column('params')
