"""roster claim codes: an unclaimed roster entry is claimed with the course's join code plus its own claim code

Revision ID: d7e3a9b2c5f1
Revises: c4d2e8f1a6b3
Create Date: 2026-12-02 14:00:00
"""
import secrets

from alembic import op
import sqlalchemy as sa


revision = 'd7e3a9b2c5f1'
down_revision = 'c4d2e8f1a6b3'
branch_labels = None
depends_on = None

# podium.server.courses.CODE_ALPHABET, copied: a migration must not change when the code does.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('claim_code', sa.String(length=16), nullable=True))
    # Entries imported before this revision were claimed with their email address; they get a code now.
    conn = op.get_bind()
    unclaimed = conn.execute(sa.text(
        "SELECT id FROM users WHERE password_hash IS NULL AND course_id IS NOT NULL AND role = 'student' "
        "AND id NOT IN (SELECT user_id FROM lti_users)")).scalars().all()
    for user_id in unclaimed:
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        conn.execute(sa.text("UPDATE users SET claim_code = :code WHERE id = :id"), {"code": code, "id": user_id})


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('claim_code')
