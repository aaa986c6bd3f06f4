"""Login throttling holds across gunicorn's processes: the counts live in the shared store (SQLite file or Redis)."""
from __future__ import annotations

import pytest
import requests

from podium.server.throttle import ACCOUNT_FAILURES
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.classroom import CSRF_RE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request, tmp_path_factory):
    """The web server only: 2 processes x 4 threads, as `podium serve` runs."""
    root = tmp_path_factory.mktemp(f"throttle-{request.param}")

    def start(database_url=None, broker_url=None):
        settings = live.settings_for(root / "var", database_url, broker_url)
        s = live.Stack(settings)
        s.tokens = live.prepare_database(settings, [write_tiny_bundle(root / "tiny")], {"alice": "student"})
        s.start_web()
        return s

    if request.param == "postgres":
        live.require_postgres_and_redis()
        import redis
        redis.Redis.from_url(live.SHARED_REDIS).flushdb()  # no counts left from another run
        with live.fresh_postgres_db() as url:
            s = start(url, live.SHARED_REDIS)
            yield s
            s.stop()
    else:
        s = start()
        yield s
        s.stop()


def _attempt(stack, password: str) -> requests.Response:
    browser = requests.Session()  # a fresh connection each time: the attempts spread over both processes
    token = CSRF_RE.search(browser.get(f"{stack.url}/login", timeout=30).text).group(1)
    return browser.post(f"{stack.url}/login", data={"username": "alice", "password": password, "csrf_token": token},
                        allow_redirects=False, timeout=30, headers={"Connection": "close"})


def test_sixty_wrong_passwords_then_the_right_one_is_refused_with_retry_after(stack):
    answers = [_attempt(stack, f"wrong-guess-{i}").status_code for i in range(60)]
    allowed = int(ACCOUNT_FAILURES.split()[0])
    assert answers[:allowed] == [200] * allowed and set(answers[allowed:]) == {429}, answers
    right = _attempt(stack, live.password_for("alice"))
    assert right.status_code == 429
    assert 0 < int(right.headers["Retry-After"]) <= 15 * 60
