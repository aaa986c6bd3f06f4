"""The LTI migration upgrades a database of the previous schema with data in it: nothing lost, LTI tables usable."""
from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from podium.core.migrate import upgrade
from tests.support import live

LTI_REVISION = "3b5ec9679dbf"


def test_upgrade_from_previous_schema_keeps_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    previous = live.revision_before(url, LTI_REVISION)
    upgrade(url, previous)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO courses (id, name, join_code, created_at) VALUES (1, 'CS101', 'K7QX2MPA', "
                          "'2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO users (id, username, display_name, role, course_id, created_at) "
                          "VALUES (1, 'alice', 'Alice', 'student', 1, '2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT username, course_id FROM users")).all() == [("alice", 1)]
        conn.execute(text("INSERT INTO lti_platforms (id, issuer, client_id, login_url, token_url, jwks_url, "
                          "course_id, frame_origins, created_at) VALUES (1, 'https://lms.example', 'c', 'x', 'y', "
                          "'z', 1, '', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO lti_users (platform_id, sub, user_id) VALUES (1, 'sub-1', 1)"))
    assert {"lti_platforms", "lti_keys", "lti_nonces", "lti_users", "lti_resource_links", "lti_launch_links",
            "lti_passbacks", "lti_deployments"} <= set(inspect(engine).get_table_names())
    engine.dispose()
