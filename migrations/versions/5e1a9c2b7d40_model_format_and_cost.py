"""model format and cost: what the sandbox measured on every submission, budgets and ranking on challenges

Revision ID: 5e1a9c2b7d40
Revises: 3b5ec9679dbf
Create Date: 2026-12-02 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5e1a9c2b7d40'
down_revision = '3b5ec9679dbf'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('format', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('params', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('flops_per_input', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('inference_ms', sa.Float(), nullable=True))
        batch.add_column(sa.Column('peak_memory_mb', sa.Float(), nullable=True))
    with op.batch_alter_table('challenges') as batch:
        batch.add_column(sa.Column('max_params', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('max_mflops', sa.Float(), nullable=True))
        batch.add_column(sa.Column('ranking', sa.String(length=16), server_default='score', nullable=False))
    # Every model scored so far was TorchScript, the only format accepted before this revision.
    op.execute("UPDATE submissions SET format = 'torchscript' WHERE status = 'scored'")


def downgrade() -> None:
    with op.batch_alter_table('challenges') as batch:
        batch.drop_column('ranking')
        batch.drop_column('max_mflops')
        batch.drop_column('max_params')
    with op.batch_alter_table('submissions') as batch:
        batch.drop_column('peak_memory_mb')
        batch.drop_column('inference_ms')
        batch.drop_column('flops_per_input')
        batch.drop_column('params')
        batch.drop_column('format')
