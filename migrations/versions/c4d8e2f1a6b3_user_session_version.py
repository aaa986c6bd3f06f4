"""user session version: a signed session cookie is valid only while it carries the user's current version

Revision ID: c4d8e2f1a6b3
Revises: 5e1a9c2b7d40
Create Date: 2026-12-02 13:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'c4d8e2f1a6b3'
down_revision = '5e1a9c2b7d40'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('session_version')
