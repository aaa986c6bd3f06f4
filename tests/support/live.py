"""Real processes for integration tests: web (gunicorn), Celery worker, beat, a private redis-server, a fresh Postgres DB."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from podium.core.config import Settings

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("PODIUM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SHARED_REDIS = os.environ.get("PODIUM_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(data_dir: Path, database_url: str | None = None, broker_url: str | None = None) -> Settings:
    """Settings for a test stack; SQLite and the SQLite broker in data_dir unless told otherwise."""
    env = {"PODIUM_DATA_DIR": str(data_dir)}
    if database_url:
        env["PODIUM_DATABASE_URL"] = database_url
    if broker_url:
        env["PODIUM_BROKER_URL"] = broker_url
    return Settings.from_env(env)


def env_for(settings: Settings, **extra) -> dict:
    """The environment a podium subprocess needs for these settings."""
    env = dict(os.environ, PODIUM_DATA_DIR=str(settings.data_dir), PODIUM_DATABASE_URL=settings.database_url,
               PODIUM_BROKER_URL=settings.broker_url, PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def postgres_available() -> bool:
    """True when the test Postgres answers."""
    try:
        import psycopg
        with psycopg.connect(_libpq(PG_ADMIN_URL), connect_timeout=3):
            return True
    except Exception:
        return False


def redis_available(url: str = SHARED_REDIS) -> bool:
    """True when the shared Redis answers."""
    try:
        import redis
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except Exception:
        return False


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def fresh_postgres_db():
    """Create an empty database for one test (module) and drop it afterwards; yields its SQLAlchemy URL."""
    import psycopg
    name = f"podium_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]  # fixture params: both databases


@contextmanager
def migrated_database(engine: str, tmp_dir: Path):
    """An empty database migrated to head: SQLite in tmp_dir, or a fresh Postgres one (skips if unreachable)."""
    from podium.core.db import Database
    from podium.core.migrate import upgrade
    if engine != "sqlite" and not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    place = nullcontext(f"sqlite:///{tmp_dir / 'podium.sqlite'}") if engine == "sqlite" else fresh_postgres_db()
    with place as url:
        upgrade(url)
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


def revision_before(url: str, revision: str) -> str:
    """The migration revision just below `revision`: where a migration test starts, with data in the old schema."""
    from alembic.script import ScriptDirectory

    from podium.core.migrate import alembic_config
    return ScriptDirectory.from_config(alembic_config(url)).get_revision(revision).down_revision


class RedisServer:
    """A private redis-server on a free port, so tests may stop and restart it."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis_available(self.url), 10, "redis-server did not start")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def wait_until(predicate, timeout_s: float, message: str, interval: float = 0.1):
    """Poll predicate until it returns something truthy; fail the test with message otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


@dataclass
class Stack:
    """A running Podium: web server and worker processes against one database and broker."""

    settings: Settings
    port: int = field(default_factory=free_port)
    procs: dict = field(default_factory=dict)
    logs: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str], **env) -> subprocess.Popen:
        self.logs = self.logs or (self.settings.data_dir / "logs")
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "podium.cli", *args], env=env_for(self.settings, **env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        out.close()
        self.procs[name] = proc
        return proc

    def start_web(self, **env) -> None:
        self._spawn("web", ["serve", "--port", str(self.port), "--workers", "2"], **env)
        wait_until(self._healthy, 60, f"web did not start; see {self.logs}/web.log")

    def start_worker(self, name: str = "worker", queues: str = "podium", hostname: str | None = None,
                     **env) -> subprocess.Popen:
        """A worker process; a fresh node name unless one is given (a restart under the same name)."""
        hostname = hostname or f"{name}-{uuid.uuid4().hex[:6]}@%h"
        return self._spawn(name, ["worker", "--queues", queues, "--hostname", hostname], **env)

    def start_beat(self, interval: float = 2.0) -> subprocess.Popen:
        return self._spawn("beat", ["beat", "--interval", str(interval)])

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(30)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in list(self.procs.values()):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def log(self, name: str) -> str:
        path = (self.logs or self.settings.data_dir / "logs") / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Api:
    """A small HTTP client for tests, bound to one token."""

    def __init__(self, url: str, token: str | None = None):
        self.url, self.token = url, token

    def _h(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(f"{self.url}/api/v1{path}", headers=self._h(), timeout=30, **kw)

    def submit(self, slug: str, model_bytes: bytes, filename: str = "model.pt") -> requests.Response:
        return requests.post(f"{self.url}/api/v1/challenges/{slug}/submissions", headers=self._h(),
                             files={"model": (filename, model_bytes)}, timeout=60)

    def wait_finished(self, sub_id: int, timeout_s: float = 120) -> dict:
        def done():
            sub = self.get(f"/submissions/{sub_id}").json()
            return sub if sub.get("status") in ("scored", "failed") else None
        return wait_until(done, timeout_s, f"submission {sub_id} did not finish in {timeout_s} s", 0.2)


def password_for(name: str) -> str:
    """The password prepare_database gives a test user (one that meets the password policy)."""
    return f"{name}-test-passphrase"


def prepare_database(settings: Settings, bundles: list[Path], users: dict[str, str]) -> dict[str, str]:
    """Migrate, publish bundles, create users (name -> role); returns name -> token."""
    from podium.cli import admin
    admin.db_upgrade(settings)
    for b in bundles:
        admin.add_challenge(settings, b, replace=True, publish=True)
    tokens = {}
    for name, role in users.items():
        admin.add_user(settings, name, role, password=password_for(name))
        tokens[name] = admin.new_token(settings, name)
    return tokens


def copy_bundle(src: Path, dest: Path) -> Path:
    """A private copy of a built bundle that a test may edit."""
    shutil.copytree(src, dest)
    return dest


def require_postgres_and_redis():
    """Skip with a clear message where the services are not reachable (they are in CI here)."""
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    if not redis_available():
        pytest.skip(f"Redis not reachable at {SHARED_REDIS}")
