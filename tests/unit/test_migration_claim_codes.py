"""The claim-code migration gives every unclaimed roster entry of the previous schema a code, and nobody else."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from podium.core.migrate import upgrade
from tests.support import live

REVISION = "d7e3a9b2c5f1"


def test_upgrade_gives_unclaimed_roster_entries_a_code(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    previous = live.revision_before(url, REVISION)
    upgrade(url, previous)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO courses (id, name, join_code, created_at) VALUES (1, 'CS101', 'K7QX2MPA', "
                          "'2026-01-01 00:00:00')"))
        rows = [(1, "ada", None, 1, "student"), (2, "bea", "scrypt:x", 1, "student"), (3, "cid", None, None, "student"),
                (4, "dee", None, 1, "instructor"), (5, "eve", None, 1, "student")]
        for uid, name, pw, course, role in rows:
            conn.execute(text("INSERT INTO users (id, username, display_name, role, password_hash, course_id, "
                              "created_at) VALUES (:id, :n, :n, :r, :pw, :c, '2026-01-01 00:00:00')"),
                         {"id": uid, "n": name, "r": role, "pw": pw, "c": course})
        conn.execute(text("INSERT INTO lti_platforms (id, issuer, client_id, login_url, token_url, jwks_url, "
                          "course_id, frame_origins, created_at) VALUES (1, 'https://lms.example', 'c', 'x', 'y', "
                          "'z', 1, '', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO lti_users (platform_id, sub, user_id) VALUES (1, 'sub-5', 5)"))
    upgrade(url)
    with engine.begin() as conn:
        codes = dict(conn.execute(text("SELECT username, claim_code FROM users")).all())
    assert len(codes["ada"]) == 8 and codes["ada"].isalnum()  # unclaimed, on a roster
    assert codes["bea"] is None and codes["cid"] is None and codes["dee"] is None  # claimed, no course, instructor
    assert codes["eve"] is None  # an LMS account signs in through its launches
    engine.dispose()
