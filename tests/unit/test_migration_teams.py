"""The teams migration upgrades a database of the previous schema with data in it: nothing lost, all individual."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import MetaData, create_engine, select

from podium.core.db import Database
from podium.core.migrate import upgrade
from podium.core.models import Challenge, Submission
from podium.server import leaderboard
from podium.server.submissions import find_competitor
from tests.support import live
from tests.support.live import require_postgres_and_redis

TEAMS_REVISION = "b3c1f0a7e9d2"


def _fill_previous_schema(url: str) -> None:
    """A class as the previous schema held it: two students, a challenge, scored and failed submissions."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    now = datetime(2026, 11, 30, 12, 0)
    with engine.begin() as conn:
        conn.execute(t["users"].insert(), [
            {"id": 1, "username": "ana", "display_name": "Ana", "role": "student", "created_at": now, "alias": None},
            {"id": 2, "username": "ben", "display_name": "Ben", "role": "student", "created_at": now, "alias": "B"}])
        conn.execute(t["challenges"].insert(), [{
            "id": 1, "slug": "old", "title": "Old", "summary": "", "kind": "image", "labels": ["a", "b"],
            "input_shape": [1, 8, 8], "metric": "accuracy", "public_fraction": 0.5, "split_seed": 0,
            "daily_limit": 5, "max_queued": 3, "max_model_mb": 20.0, "time_limit_s": 60.0, "memory_limit_mb": 2048,
            "readme": "", "test_sha256": "0" * 64, "n_test": 10, "created_at": now}])
        subs = [(1, 1, "scored", 0.8, 0.7), (2, 2, "scored", 0.9, 0.6), (3, 1, "failed", None, None)]
        conn.execute(t["submissions"].insert(), [
            {"id": i, "challenge_id": 1, "user_id": u, "status": st, "attempt": 1, "infra_retries": 0,
             "model_sha256": f"{i:064d}", "model_size": 10, "filename": "model.pt", "is_final": False,
             "created_at": now, "error": "boom" if st == "failed" else None} for i, u, st, _, _ in subs])
        conn.execute(t["scores"].insert(), [
            {"submission_id": i, "challenge_id": 1, "user_id": u, "metric": "accuracy", "public_score": p,
             "private_score": q, "n_public": 5, "n_private": 5, "created_at": now}
            for i, u, st, p, q in subs if st == "scored"])
    engine.dispose()


def _upgrade_with_data(url: str) -> None:
    upgrade(url, live.revision_before(url, TEAMS_REVISION))
    _fill_previous_schema(url)
    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            challenge = s.scalar(select(Challenge).where(Challenge.slug == "old"))
            assert challenge.team_size == 1 and not challenge.is_team
            subs = s.scalars(select(Submission).order_by(Submission.id)).all()
            assert [(x.id, x.status, x.team_id) for x in subs] == [(1, "scored", None), (2, "scored", None),
                                                                  (3, "failed", None)]
            assert subs[2].error == "boom"
            board = leaderboard.build(s, challenge, None)
            assert [(r["user"], r["public_score"]) for r in board["rows"]] == [("B", 0.9), ("ana", 0.8)]
            assert "members" not in board["rows"][0]
            assert find_competitor(s, subs[0].user, challenge).team is None
    finally:
        db.dispose()


def test_sqlite_upgrade_keeps_the_data(tmp_path):
    _upgrade_with_data(f"sqlite:///{tmp_path / 'old.sqlite'}")


@pytest.mark.postgres
def test_postgres_upgrade_keeps_the_data():
    require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        _upgrade_with_data(url)
