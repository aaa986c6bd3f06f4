"""Shared fixtures: built bundles, tiny challenges, live stacks on SQLite or Postgres+Redis."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests import live


@pytest.fixture(scope="session")
def bundles_dir(tmp_path_factory) -> Path:
    """The digits bundle built once per test session."""
    from challenges.digits.build import build
    root = tmp_path_factory.mktemp("bundles")
    build(root / "digits")
    return root


@pytest.fixture(scope="session")
def digits_bundle(bundles_dir) -> Path:
    return bundles_dir / "digits"


def write_tiny_bundle(root: Path, slug: str = "tiny", n: int = 120, classes: int = 3, public_fraction: float = 0.5,
                      extra_toml: str = "", seed: int = 0) -> Path:
    """A small, fast challenge: inputs [1, 8, 8], labels decided by which third of the image is bright."""
    from podium.bundle import save_npz
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.2
    for i, label in enumerate(y):
        x[i, 0, :, label * 8 // classes:(label + 1) * 8 // classes] += 0.8
    root.mkdir(parents=True, exist_ok=True)
    labels = ", ".join(f'"c{i}"' for i in range(classes))
    (root / "challenge.toml").write_text(textwrap.dedent(f"""\
        slug = "{slug}"
        title = "Tiny {slug}"
        summary = "A small synthetic challenge for tests"
        kind = "image"
        labels = [{labels}]
        input_shape = [1, 8, 8]
        public_fraction = {public_fraction}
        split_seed = 3
        daily_limit = 1000
        time_limit_s = 20
        memory_limit_mb = 2048
        """) + extra_toml)
    (root / "data").mkdir(exist_ok=True)
    save_npz(root / "data" / "test.npz", x, y.astype(np.int64))
    save_npz(root / "data" / "train.npz", x, y.astype(np.int64))
    return root


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


def require_postgres_and_redis():
    """Skip with a clear message where the services are not reachable (they are in CI here)."""
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    if not live.redis_available():
        pytest.skip(f"Redis not reachable at {live.SHARED_REDIS}")


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
