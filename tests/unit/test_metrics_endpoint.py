"""/metrics answers the Prometheus text format with queue length, scoring durations and failures by reason."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.core import states
from podium.core.migrate import upgrade
from podium.core.models import Challenge, Submission, User, utcnow
from podium.server.app import create_app
from tests.support import live


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request, tmp_path):
    """The real web app on a migrated, empty database of each engine."""
    if request.param == "sqlite":
        settings = live.settings_for(tmp_path)
        upgrade(settings.database_url)
        yield create_app(settings)
        return
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    with live.fresh_postgres_db() as url:
        upgrade(url)
        application = create_app(live.settings_for(tmp_path, database_url=url))
        yield application
        application.extensions["podium"].db.dispose()


def scrape(app) -> dict:
    """{(name, labels as a sorted tuple): value} of every sample /metrics returns."""
    resp = app.test_client().get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain") and "version=" in resp.content_type
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def fill(app) -> None:
    """Two challenges on two queues; submissions in every state with known durations and reasons."""
    now = utcnow()
    db = app.extensions["podium"].db
    with db.session() as s:
        user = User(username="ann")
        cpu = Challenge(slug="a", title="A", kind="image", labels=["x", "y"], input_shape=[1], test_sha256="0" * 64,
                        n_test=1)
        gpu = Challenge(slug="b", title="B", kind="image", labels=["x", "y"], input_shape=[1], test_sha256="0" * 64,
                        n_test=1, queue="gpu")
        s.add_all([user, cpu, gpu])
        s.flush()

        def sub(c, status, *, wait=None, run=None, error=None, kind=None, age=0.0):
            created = now - timedelta(seconds=age)
            started = created + timedelta(seconds=wait) if wait is not None else None
            finished = started + timedelta(seconds=run) if run is not None else None
            s.add(Submission(challenge_id=c.id, user_id=user.id, status=status, model_sha256="f" * 64, model_size=1,
                             created_at=created, enqueued_at=created, started_at=started, finished_at=finished,
                             error=error, failure_kind=kind))

        sub(cpu, states.QUEUED, age=40)
        sub(cpu, states.QUEUED, age=5)
        sub(gpu, states.QUEUED, age=2)
        sub(cpu, states.RUNNING, wait=0.07)
        sub(cpu, states.SCORED, wait=0.2, run=0.3)
        sub(cpu, states.SCORED, wait=2.0, run=1.5)
        sub(gpu, states.SCORED, wait=0.02, run=0.05)
        sub(cpu, states.FAILED, wait=0.2, run=20.0, error="ran longer than the 20 s limit", kind=states.FAILURE_MODEL)
        sub(cpu, states.FAILED, wait=0.2, run=0.4, error="forward() raised: shapes do not match",
            kind=states.FAILURE_MODEL)
        sub(cpu, states.FAILED, wait=0.2, run=0.4, error="output shape [1000, 3], expected [1000, 10]",
            kind=states.FAILURE_MODEL)
        sub(cpu, states.FAILED, wait=0.2, run=0.4, error="used more than the 2048 MB memory limit",
            kind=states.FAILURE_MODEL)
        sub(cpu, states.FAILED, wait=0.2, run=3.0, error=states.INFRA_ERROR, kind=states.FAILURE_INFRA)
        sub(cpu, states.FAILED, wait=0.2, run=0.1, error="the model crashed while loading (signal SIGSEGV)")
        sub(cpu, states.FAILED, error="cancelled by the instructor", kind=states.FAILURE_CANCELLED)


def test_empty_database_scrapes_zeroes(app):
    m = scrape(app)
    for status in states.STATUSES:
        assert m[("podium_submissions", (("status", status),))] == 0
    assert not any(name.startswith("podium_queue_length") for name, _ in m)


def test_queue_length_durations_and_failures(app):
    fill(app)
    m = scrape(app)
    assert m[("podium_submissions", (("status", "queued"),))] == 3
    assert m[("podium_submissions", (("status", "failed"),))] == 7
    assert m[("podium_queue_length", (("queue", "podium"),))] == 2
    assert m[("podium_queue_length", (("queue", "gpu"),))] == 1
    assert 39 <= m[("podium_queue_oldest_seconds", (("queue", "podium"),))] < 60

    def failures(kind, reason):
        return m[("podium_submission_failures_total", (("kind", kind), ("reason", reason)))]
    assert failures("model", "time_limit") == 1
    assert failures("model", "forward_error") == 1
    assert failures("model", "output_shape") == 1
    assert failures("model", "memory_limit") == 1
    assert failures("model", "crash") == 1   # no kind recorded counts as the model's
    assert failures("infra", "infrastructure") == 1
    assert failures("cancelled", "other") == 1

    def scoring(status, le):
        return m[("podium_scoring_duration_seconds_bucket", (("le", le), ("status", status)))]
    assert scoring("scored", "0.1") == 1 and scoring("scored", "0.5") == 2 and scoring("scored", "2.0") == 3
    assert m[("podium_scoring_duration_seconds_count", (("status", "scored"),))] == 3
    assert m[("podium_scoring_duration_seconds_sum", (("status", "scored"),))] == pytest.approx(1.85, abs=1e-3)
    # The cancelled row never started, so it has no duration; the other six failures do.
    assert m[("podium_scoring_duration_seconds_count", (("status", "failed"),))] == 6
    assert scoring("failed", "0.5") == 4 and scoring("failed", "5.0") == 5 and scoring("failed", "+Inf") == 6

    def wait(status, le):
        return m[("podium_queue_wait_seconds_bucket", (("le", le), ("status", status)))]
    assert wait("running", "0.1") == 1
    assert wait("scored", "0.05") == 1 and wait("scored", "0.25") == 2 and wait("scored", "5.0") == 3
