"""The model-format-and-cost migration upgrades a database of the previous schema with data in it."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from podium.core.migrate import upgrade
from tests.support import live

COST_REVISION = "5e1a9c2b7d40"


def test_upgrade_keeps_rows_and_marks_scored_models_torchscript(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    previous = live.revision_before(url, COST_REVISION)
    upgrade(url, previous)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, display_name, role, created_at) "
                          "VALUES (1, 'alice', 'Alice', 'student', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO challenges (id, slug, title, summary, kind, labels, input_shape, metric, "
                          "public_fraction, split_seed, daily_limit, max_queued, max_model_mb, time_limit_s, "
                          "memory_limit_mb, team_size, readme, test_sha256, n_test, created_at) VALUES (1, 'd', 'D', "
                          "'', 'image', '[\"a\",\"b\"]', '[1,2,2]', 'accuracy', 0.3, 0, 10, 3, 20, 60, 2048, 1, '', "
                          "'0', 4, '2026-01-01 00:00:00')"))
        for sub_id, status in ((1, "scored"), (2, "queued"), (3, "failed")):
            conn.execute(text("INSERT INTO submissions (id, challenge_id, user_id, status, attempt, infra_retries, "
                              "model_sha256, model_size, filename, is_final, created_at) VALUES "
                              f"({sub_id}, 1, 1, '{status}', 1, 0, 'f', 1, 'model.pt', 0, '2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, status, format, params, flops_per_input FROM submissions ORDER BY id")).all()
        assert rows == [(1, "scored", "torchscript", None, None), (2, "queued", None, None, None),
                        (3, "failed", None, None, None)]
        assert conn.execute(text("SELECT ranking, max_params, max_mflops FROM challenges")).all() == [("score", None, None)]
        conn.execute(text("UPDATE submissions SET params = 5000000000, flops_per_input = 9000000000 WHERE id = 1"))
        assert conn.execute(text("SELECT params FROM submissions WHERE id = 1")).scalar() == 5_000_000_000
    engine.dispose()
