"""The idempotency-key and challenge-state migration upgrades a database with data: challenges stay published, rows keep."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import MetaData, create_engine, select

from podium.core.db import Database
from podium.core.migrate import upgrade
from podium.core.models import Challenge, Submission
from tests.support import live
from tests.support.live import require_postgres_and_redis

REVISION = "c4d2e8f1a6b3"


def _fill_previous_schema(url: str) -> None:
    """A challenge that every student already sees, and two submissions made before keys existed."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    now = datetime(2026, 12, 1, 12, 0)
    with engine.begin() as conn:
        conn.execute(t["users"].insert(), [{"id": 1, "username": "ana", "display_name": "Ana", "role": "student",
                                            "created_at": now}])
        conn.execute(t["challenges"].insert(), [{
            "id": 1, "slug": "old", "title": "Old", "summary": "", "kind": "image", "labels": ["a", "b"],
            "input_shape": [1, 8, 8], "metric": "accuracy", "public_fraction": 0.5, "split_seed": 0,
            "daily_limit": 5, "max_queued": 3, "max_model_mb": 20.0, "time_limit_s": 60.0, "memory_limit_mb": 2048,
            "team_size": 1, "readme": "", "test_sha256": "0" * 64, "n_test": 10, "created_at": now}])
        conn.execute(t["submissions"].insert(), [
            {"id": i, "challenge_id": 1, "user_id": 1, "status": "scored", "attempt": 1, "infra_retries": 0,
             "model_sha256": f"{i:064d}", "model_size": 10, "filename": "model.pt", "is_final": False,
             "created_at": now} for i in (1, 2)])
    engine.dispose()


def _upgrade_with_data(url: str) -> None:
    upgrade(url, live.revision_before(url, REVISION))
    _fill_previous_schema(url)
    upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            assert s.scalar(select(Challenge.state).where(Challenge.slug == "old")) == "published"
            subs = s.scalars(select(Submission).order_by(Submission.id)).all()
            assert [(x.id, x.status, x.idempotency_key) for x in subs] == [(1, "scored", None), (2, "scored", None)]
    finally:
        db.dispose()


def test_sqlite_upgrade_keeps_the_data(tmp_path):
    _upgrade_with_data(f"sqlite:///{tmp_path / 'old.sqlite'}")


@pytest.mark.postgres
def test_postgres_upgrade_keeps_the_data():
    require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        _upgrade_with_data(url)
