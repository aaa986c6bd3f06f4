"""The board migrations upgrade a database of the previous schema with data in it: entries and progress points
back-filled exactly."""
from __future__ import annotations

from contextlib import nullcontext

import pytest
from sqlalchemy import create_engine, text

from podium.core import board
from podium.core.db import Database
from podium.core.migrate import upgrade
from tests.support import live

BOARD_REVISION = "c41d7e2a9b85"

# Two challenges: individual (1) and teams (2). In 1: ann's best public is #2 (a tie with #3 goes to the
# earlier), she marked #3 final; ben's #5 is disqualified, cat is. In 2: team 1 (ann, ben) and the
# instructor's team-less upload.
ROWS = [
    "INSERT INTO courses (id, name, join_code, created_at) VALUES (1, 'CS', 'K7QX2MPA', '2026-01-01 00:00:00')",
    *(f"INSERT INTO users (id, username, display_name, role, created_at, disqualified_reason) VALUES "
      f"({i}, '{n}', '{n}', '{r}', '2026-01-01 00:00:00', {dq})"
      for i, n, r, dq in [(1, "ann", "student", "NULL"), (2, "ben", "student", "NULL"),
                          (3, "cat", "student", "'copied'"), (4, "prof", "instructor", "NULL")]),
    *(f"INSERT INTO challenges (id, slug, title, summary, kind, labels, input_shape, metric, public_fraction, "
      f"split_seed, daily_limit, max_queued, max_model_mb, time_limit_s, memory_limit_mb, team_size, readme, "
      f"test_sha256, n_test, created_at) VALUES ({i}, 'c{i}', 'C', '', 'image', '[\"a\", \"b\"]', '[1, 8, 8]', "
      f"'accuracy', 0.3, 0, 10, 3, 20, 60, 2048, {size}, '', '{'0' * 64}', 10, '2026-01-01 00:00:00')"
      for i, size in [(1, 1), (2, 3)]),
    "INSERT INTO teams (id, challenge_id, name, name_key, join_code, created_at) VALUES "
    "(1, 2, 'Owls', 'owls', 'ABCDEFGHJK', '2026-01-01 00:00:00')",
    "INSERT INTO team_members (id, team_id, challenge_id, user_id, joined_at) VALUES "
    "(1, 1, 2, 1, '2026-01-01 00:00:00'), (2, 1, 2, 2, '2026-01-01 00:00:00')",
]
SUBS = [  # id, challenge, user, team, status, final, disqualified, minute, public, private
    (1, 1, 1, None, "scored", False, None, 1, 0.5, 0.9),
    (2, 1, 1, None, "scored", False, None, 2, 0.8, 0.1),
    (3, 1, 1, None, "scored", True, None, 3, 0.8, 0.7),
    (4, 1, 2, None, "failed", False, None, 1, None, None),
    (5, 1, 2, None, "scored", False, "leaked", 2, 0.99, 0.99),
    (6, 1, 2, None, "scored", False, None, 4, 0.6, 0.6),
    (7, 1, 3, None, "scored", False, None, 1, 0.95, 0.95),
    (8, 2, 1, 1, "scored", False, None, 1, 0.7, 0.2),
    (9, 2, 2, 1, "scored", False, None, 2, 0.6, 0.8),
    (10, 2, 2, 1, "scored", False, None, 3, 0.1, 1.0),
    (11, 2, 4, None, "scored", False, None, 1, 0.65, 0.5),
]
EXPECTED = {  # (challenge, board, kind, owner) -> (submission, entries)
    (1, "public", "user", 1): (2, 3), (1, "private", "user", 1): (3, 3),
    (1, "public", "user", 2): (6, 1), (1, "private", "user", 2): (6, 1),
    (2, "public", "team", 1): (8, 3), (2, "private", "team", 1): (9, 3),
    (2, "public", "user", 4): (11, 1), (2, "private", "user", 4): (11, 1),
}

EXPECTED_PROGRESS = {  # (challenge, kind, owner) -> submissions where the best public score rose, oldest first
    (1, "user", 1): [1, 2], (1, "user", 2): [6], (2, "team", 1): [8], (2, "user", 4): [11],
}


def _fill(conn) -> None:
    for sql in ROWS:
        conn.execute(text(sql))
    for sid, cid, uid, tid, status, final, dq, minute, pub, priv in SUBS:
        conn.execute(text("INSERT INTO submissions (id, challenge_id, user_id, team_id, status, attempt, infra_retries, "
                          "model_sha256, model_size, filename, is_final, disqualified_reason, created_at, params, flops_per_input) "
                          "VALUES (:id, :c, :u, :t, :st, 1, 0, :sha, 1, 'model.pt', :final, :dq, :at, :p, :f)"),
                     {"id": sid, "c": cid, "u": uid, "t": tid, "st": status, "sha": "f" * 64, "final": final, "dq": dq,
                      "at": f"2026-03-01 09:0{minute}:00", "p": 100 * sid, "f": None if sid == 8 else 1000 * sid})
        if pub is not None:
            conn.execute(text("INSERT INTO scores (submission_id, challenge_id, user_id, metric, public_score, "
                              "private_score, n_public, n_private, created_at) VALUES (:id, :c, :u, 'accuracy', :p, "
                              ":q, 3, 7, '2026-03-01 10:00:00')"), {"id": sid, "c": cid, "u": uid, "p": pub, "q": priv})


def _entries(conn) -> dict:
    rows = conn.execute(text("SELECT challenge_id, board, owner_kind, owner_id, submission_id, entries, order_score, "
                             "public_score, private_score, created_at, params, flops_per_input "
                             "FROM board_entries")).all()
    return {(r[0], r[1], r[2], r[3]): tuple(r[4:]) for r in rows}


def _progress(conn) -> dict:
    out: dict = {}
    for r in conn.execute(text("SELECT challenge_id, owner_kind, owner_id, submission_id, created_at, public_score "
                               "FROM board_progress ORDER BY created_at, submission_id")):
        out.setdefault((r[0], r[1], r[2]), []).append(tuple(r[3:]))
    return out


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_upgrade_from_previous_schema_backfills_the_board(tmp_path, engine):
    if engine == "postgres" and not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    with (live.fresh_postgres_db() if engine == "postgres" else nullcontext(f"sqlite:///{tmp_path / 'm.sqlite'}")) as url:
        previous = live.revision_before(url, BOARD_REVISION)
        upgrade(url, previous)
        eng = create_engine(url)
        with eng.begin() as conn:
            _fill(conn)
        upgrade(url)
        with eng.begin() as conn:
            filled = _entries(conn)
            assert {k: v[:2] for k, v in filled.items()} == EXPECTED
            assert filled[(1, "private", "user", 1)][2:5] == (-0.7, 0.8, 0.7)
            assert {k: v[6:] for k, v in filled.items()} == {  # the ranking submission's params and FLOPs
                k: (100 * sub, None if sub == 8 else 1000 * sub) for k, (sub, _) in EXPECTED.items()}
            assert conn.execute(text("SELECT count(*) FROM board_versions")).scalar() == 2
            points = _progress(conn)
            assert {k: [p[0] for p in v] for k, v in points.items()} == EXPECTED_PROGRESS
        eng.dispose()
        # The back-fill is what the code that keeps the board computes.
        database = Database(url)
        with database.session() as s:
            for cid in (1, 2):
                board.refresh(s, cid)
        database.dispose()
        eng = create_engine(url)
        with eng.begin() as conn:
            assert _entries(conn) == filled
            assert _progress(conn) == points
        eng.dispose()
