"""Shared fixtures: built bundles, tiny challenges, live stacks on SQLite or Postgres+Redis."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import live
from tests.support.browser import CHROMIUM, MISSING, REQUIRE_ENV, browser_required
from tests.support.bundles import write_tiny_bundle
from tests.support.devices import sandbox_pool
from tests.support.live import require_postgres_and_redis

_BROWSER_SKIPPED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    """Without chromium the browser tests are skipped under one reason, said once at the end; in CI it is an error."""
    wanted = [item for item in items if item.get_closest_marker("browser")]
    if not wanted or CHROMIUM.exists():
        return
    if browser_required():
        raise pytest.UsageError(f"{len(wanted)} browser tests cannot run: {MISSING} ({REQUIRE_ENV} is set)")
    for item in wanted:
        item.add_marker(pytest.mark.skip(reason=MISSING))
    config.stash[_BROWSER_SKIPPED] = len(wanted)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The one line that says the browser tests were skipped, and how to run them."""
    skipped = config.stash.get(_BROWSER_SKIPPED, 0)
    if skipped:
        terminalreporter.write_line(f"{skipped} browser tests skipped: {MISSING}", yellow=True, bold=True)


@pytest.fixture(scope="module")
def pool():
    """A started scoring pool on the test device (PODIUM_TEST_DEVICE), shared by the tests of one module."""
    with sandbox_pool() as p:
        yield p


@pytest.fixture(scope="session")
def bundles_dir(tmp_path_factory) -> Path:
    """The digits bundle built once per test session."""
    from podium.challenges.digits.build import build
    root = tmp_path_factory.mktemp("bundles")
    build(root / "digits")
    return root


@pytest.fixture(scope="session")
def digits_bundle(bundles_dir) -> Path:
    return bundles_dir / "digits"


@pytest.fixture
def tiny_bundle(tmp_path) -> Path:
    return write_tiny_bundle(tmp_path / "tiny")


def _stack(data_dir: Path, bundles: list[Path], users: dict, database_url=None, broker_url=None, worker=True):
    settings = live.settings_for(data_dir, database_url, broker_url)
    tokens = live.prepare_database(settings, bundles, users)
    stack = live.Stack(settings)
    stack.tokens = tokens
    stack.start_web()
    if worker:
        stack.start_worker()
    return stack


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory, digits_bundle):
    """Web + one real Celery worker on the embedded default (SQLite DB, SQLite broker)."""
    data = tmp_path_factory.mktemp("sqlite-stack")
    tiny = write_tiny_bundle(data / "bundle-tiny")
    stack = _stack(data / "var", [digits_bundle, tiny], {"alice": "student", "bob": "student", "prof": "instructor"})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory, digits_bundle):
    """Web + one real Celery worker on Postgres and Redis."""
    require_postgres_and_redis()
    data = tmp_path_factory.mktemp("pg-stack")
    tiny = write_tiny_bundle(data / "bundle-tiny")
    with live.fresh_postgres_db() as url:
        stack = _stack(data / "var", [digits_bundle, tiny], {"alice": "student", "bob": "student", "prof": "instructor"},
                       database_url=url, broker_url=live.SHARED_REDIS)
        yield stack
        stack.stop()
