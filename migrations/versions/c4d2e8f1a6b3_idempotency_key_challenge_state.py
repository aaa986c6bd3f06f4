"""uploads' idempotency keys (submissions.idempotency_key) and the challenge lifecycle (challenges.state)

Revision ID: c4d2e8f1a6b3
Revises: c4d8e2f1a6b3
Create Date: 2026-12-02 13:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'c4d2e8f1a6b3'
down_revision = 'c4d8e2f1a6b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_submissions_user_idempotency', ['user_id', 'idempotency_key'], unique=False)
    # Challenges that exist already were visible to everyone: they stay published.
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='published', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.drop_column('state')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_user_idempotency')
        batch_op.drop_column('idempotency_key')
