"""The session-version migration upgrades a database of the previous schema with users in it: each starts at 0."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from podium.core.migrate import upgrade
from tests.support import live

REVISION = "c4d8e2f1a6b3"


def test_upgrade_from_previous_schema_keeps_users_signed_in_at_version_zero(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    previous = live.revision_before(url, REVISION)
    upgrade(url, previous)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, display_name, role, password_hash, created_at) "
                          "VALUES (1, 'alice', 'Alice', 'student', 'scrypt:x', '2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT username, password_hash, session_version FROM users")).all() == [
            ("alice", "scrypt:x", 0)]
        conn.execute(text("INSERT INTO users (id, username, display_name, role, created_at) "
                          "VALUES (2, 'bob', 'Bob', 'student', '2026-01-01 00:00:00')"))
        assert conn.execute(text("SELECT session_version FROM users WHERE id = 2")).scalar() == 0
    engine.dispose()
