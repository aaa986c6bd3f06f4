"""Leaderboard ranks, ties, reveal and final picks against a plain-Python reference; a fixed number of statements per page.

These histories are written straight into the tables, so each test recomputes the board (podium.core.board.refresh)
before reading it; tests/unit/test_board.py drives the real moves that keep the board current.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from podium.core import board, states
from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission, User
from podium.server import leaderboard
from tests.support import live

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=live.ENGINES)
def db(request, tmp_path_factory):
    """A migrated, empty database on each engine."""
    with live.migrated_database(request.param, tmp_path_factory.mktemp("lb")) as database:
        yield database


_counter = iter(range(1, 10**9))


def new_challenge(s, **kw) -> Challenge:
    n = next(_counter)
    c = Challenge(slug=f"c{n}", title="C", kind="image", labels=["a", "b"], input_shape=[1, 8, 8],
                  test_sha256="0" * 64, n_test=10, **kw)
    s.add(c)
    s.flush()
    return c


def new_user(s, name: str | None = None, **kw) -> User:
    u = User(username=name or f"u{next(_counter)}", role=kw.pop("role", "student"), **kw)
    s.add(u)
    s.flush()
    return u


def add_entry(s, c: Challenge, u: User, public: float, private: float, minutes: float, status=states.SCORED,
              is_final=False, disqualified=None) -> Submission:
    sub = Submission(challenge_id=c.id, user_id=u.id, status=status, model_sha256="f" * 64, model_size=1,
                     created_at=T0 + timedelta(minutes=minutes), is_final=is_final, disqualified_reason=disqualified)
    s.add(sub)
    if status == states.SCORED:
        s.add(Score(submission=sub, challenge_id=c.id, user_id=u.id, metric="accuracy", public_score=public,
                    private_score=private, n_public=3, n_private=7))
    return sub


def reference(s, c: Challenge) -> list[tuple]:
    """The leaderboard computed the slow, obvious way: (user, public, private, entries) in rank order."""
    entries = [(sub.user_id, sub.id, sub.score.public_score, sub.score.private_score, sub.created_at, sub.is_final)
               for sub in s.query(Submission).filter_by(challenge_id=c.id, status=states.SCORED)
               if sub.disqualified_reason is None and sub.user.disqualified_reason is None]
    pub_key = lambda e: (-e[2], e[4], e[1])  # noqa: E731
    priv_key = lambda e: (-e[3], e[4], e[1])  # noqa: E731
    by_user: dict[int, list] = {}
    for e in sorted(entries, key=pub_key):
        by_user.setdefault(e[0], []).append(e)
    if c.revealed_at is None:
        chosen = sorted((items[0] for items in by_user.values()), key=pub_key)
    else:
        chosen = sorted((min([e for e in items if e[5]] or items[:2], key=priv_key) for items in by_user.values()),
                        key=priv_key)
    names = {u.id: u.username for u in s.query(User)}
    return [(names[e[0]], e[2], e[3], len(by_user[e[0]])) for e in chosen]


@contextmanager
def count_statements(database: Database):
    """Count the SQL statements sent while the block runs."""
    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        seen.append(statement)
    event.listen(database.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", before)


def settle(s, c: Challenge) -> None:
    """Recompute the whole board after writing entries straight into the tables."""
    s.flush()
    board.refresh(s, c.id)


def test_best_score_per_student_ties_go_to_earlier(db):
    with db.session() as s:
        c = new_challenge(s)
        ann, ben, cat = new_user(s), new_user(s), new_user(s)
        add_entry(s, c, ann, 0.80, 0.5, 1)
        add_entry(s, c, ann, 0.90, 0.4, 2)
        add_entry(s, c, ben, 0.90, 0.9, 3)          # same best as ann, later: ranked after her
        add_entry(s, c, cat, 0.95, 0.1, 4, status=states.FAILED)  # failed entries do not count
        add_entry(s, c, cat, 0.70, 0.2, 5)
        settle(s, c)
        board = leaderboard.build(s, c, None)
        assert [(r["rank"], r["user"], r["public_score"], r["entries"]) for r in board["rows"]] == [
            (1, ann.username, 0.90, 2), (2, ben.username, 0.90, 1), (3, cat.username, 0.70, 1)]
        assert board["revealed"] is False and all("private_score" not in r for r in board["rows"])
        assert board["rows"][0]["best_at"] == (T0 + timedelta(minutes=2)).isoformat()
        assert leaderboard.user_rank(s, c, ben.id) == 2
        assert leaderboard.user_rank(s, c, new_user(s).id) is None


def test_instructor_sees_private_and_real_names(db):
    with db.session() as s:
        c = new_challenge(s)
        ann = new_user(s, alias=f"fox{next(_counter)}")
        prof = new_user(s, role="instructor")
        add_entry(s, c, ann, 0.6, 0.7, 1)
        settle(s, c)
        public = leaderboard.build(s, c, None)["rows"][0]
        assert public["user"] == ann.alias and "private_score" not in public
        seen = leaderboard.build(s, c, prof)["rows"][0]
        assert seen["user"] == ann.username and seen["private_score"] == 0.7


def test_disqualified_entries_and_students_are_left_out(db):
    with db.session() as s:
        c = new_challenge(s)
        ann, ben = new_user(s), new_user(s, disqualified_reason="copied")
        add_entry(s, c, ann, 0.99, 0.9, 1, disqualified="leaked labels")
        add_entry(s, c, ann, 0.50, 0.5, 2)
        add_entry(s, c, ben, 0.90, 0.9, 3)
        settle(s, c)
        rows = leaderboard.build(s, c, None)["rows"]
        assert [(r["user"], r["public_score"], r["entries"]) for r in rows] == [(ann.username, 0.5, 1)]


def test_reveal_uses_final_picks_or_best_two_public(db):
    with db.session() as s:
        c = new_challenge(s)
        ann, ben, cat = new_user(s), new_user(s), new_user(s)
        # ann picked a final entry: it counts even though another of hers is better in private.
        add_entry(s, c, ann, 0.90, 0.60, 1)
        add_entry(s, c, ann, 0.70, 0.95, 2, is_final=True)
        add_entry(s, c, ann, 0.50, 0.99, 3)
        # ben picked nothing: the better private of his two best public entries counts, not his third.
        add_entry(s, c, ben, 0.85, 0.70, 4)
        add_entry(s, c, ben, 0.80, 0.80, 5)
        add_entry(s, c, ben, 0.10, 1.00, 6)
        add_entry(s, c, cat, 0.95, 0.50, 7)
        c.revealed_at = T0 + timedelta(days=1)
        settle(s, c)
        board = leaderboard.build(s, c, None)
        assert board["revealed"] is True
        got = [(r["user"], r["public_score"], r["private_score"], r["public_rank"], r["rank_change"], r["entries"])
               for r in board["rows"]]
        assert got == [(ann.username, 0.70, 0.95, 2, 1, 3), (ben.username, 0.80, 0.80, 3, 1, 3),
                       (cat.username, 0.95, 0.50, 1, -2, 1)]
        assert board["rows"][0]["best_at"] == (T0 + timedelta(minutes=2)).isoformat()


@pytest.mark.parametrize("revealed", [False, True])
def test_random_boards_match_reference(db, revealed):
    rng = random.Random(7 + revealed)
    with db.session() as s:
        c = new_challenge(s)
        users = [new_user(s, disqualified_reason="x" if rng.random() < 0.05 else None) for _ in range(25)]
        for _ in range(400):
            # Scores on a coarse grid, so that ties are common.
            add_entry(s, c, rng.choice(users), rng.randint(0, 10) / 10, rng.randint(0, 10) / 10, rng.randint(0, 50),
                      status=rng.choice([states.SCORED] * 8 + [states.FAILED, states.QUEUED]),
                      is_final=rng.random() < 0.1, disqualified="dq" if rng.random() < 0.03 else None)
        if revealed:
            c.revealed_at = T0 + timedelta(days=2)
        settle(s, c)
        prof = new_user(s, role="instructor")
        rows = leaderboard.build(s, c, prof)["rows"]
        assert [(r["user"], r["public_score"], r["private_score"], r["entries"]) for r in rows] == reference(s, c)
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize("revealed", [False, True])
def test_statements_per_page_do_not_grow_with_rows(db, revealed):
    with db.session() as s:
        c = new_challenge(s, revealed_at=T0 if revealed else None)
        prof = new_user(s, role="instructor")
        users = [new_user(s) for _ in range(40)]
        counts = []
        for start, size in ((0, 10), (10, 400)):
            for n in range(start, size):
                add_entry(s, c, users[n % len(users)], (n % 17) / 17, (n % 5) / 5, n, is_final=n % 9 == 0)
            settle(s, c)
            with count_statements(db) as board_sql:
                board = leaderboard.build(s, c, prof)
            with count_statements(db) as rank_sql:
                leaderboard.user_rank(s, c, users[0].id)
            assert len(board["rows"]) == min(size, len(users))
            counts.append((len(board_sql), len(rank_sql)))
        # The page and the total; a rank is the student's row and a count on the board's index.
        assert counts == [(2, 2)] * 2, counts


def test_top_users_and_history_of_a_few(db):
    with db.session() as s:
        c = new_challenge(s)
        ann, ben, cat = new_user(s), new_user(s), new_user(s)
        add_entry(s, c, ann, 0.5, 0.5, 1)
        add_entry(s, c, ben, 0.7, 0.5, 2)
        add_entry(s, c, ann, 0.9, 0.5, 3)
        add_entry(s, c, cat, 0.6, 0.5, 4, disqualified="dq")
        add_entry(s, c, cat, 0.1, 0.5, 5)
        add_entry(s, c, ben, 0.6, 0.5, 6)           # no improvement: not a point of the chart
        settle(s, c)
        assert leaderboard.top_users(s, c, 2) == [ann.id, ben.id]
        assert [(u, score) for u, _, score in leaderboard.history(s, c, [ann.id, ben.id, cat.id])] == [
            (ann.id, 0.5), (ben.id, 0.7), (ann.id, 0.9), (cat.id, 0.1)]
        assert [(u, score) for u, _, score in leaderboard.history(s, c, [ann.id])] == [(ann.id, 0.5), (ann.id, 0.9)]
        assert leaderboard.history(s, c, []) == []
        dee = new_user(s)
        add_entry(s, c, dee, 0.95, 0.5, 7)
        dee.disqualified_reason = "copied"  # a disqualified student's entries draw no line
        settle(s, c)
        assert leaderboard.history(s, c, [dee.id]) == []
        assert [u for u, _, _ in leaderboard.history(s, c, [ann.id, dee.id])] == [ann.id, ann.id]
