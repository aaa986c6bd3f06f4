"""The schema comes only from Alembic, and the migrations match the models exactly."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from podium.core.db import Base
from podium.core.migrate import upgrade
from tests.support import live
from tests.support.live import require_postgres_and_redis


def _diff(url: str) -> list:
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    assert _diff(url) == []
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"users", "api_tokens", "challenges", "submissions", "scores", "alembic_version"} <= tables


@pytest.mark.postgres
def test_postgres_migrations_match_models():
    require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        assert _diff(url) == []


def test_upgrade_is_repeatable(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade(url)
    upgrade(url)  # a second `podium db upgrade` is a no-op
