"""Login throttling (flask-limiter): failed attempts counted per account and per client address, in a store that
every gunicorn process shares: Redis where the broker is Redis, else a SQLite file in the data dir."""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from flask import Flask, g, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits.storage import Storage

from podium.core.config import Settings

# Failures before a 429: per account (any address), per client address (any account). A class behind one NAT
# shares an address, so that limit is the looser one; a correct password never counts.
ACCOUNT_FAILURES = "10 per 15 minutes"
ADDRESS_FAILURES = "50 per 15 minutes"


def client_address() -> str:
    """The client's address (as ProxyFix corrected it behind a trusted proxy)."""
    return request.remote_addr or "unknown"


def account_key() -> str:
    """The account an attempt names (case-folded), whoever sends it."""
    return "account:" + request.form.get("username", "").strip().casefold()[:64]


limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=False, key_prefix="podium")


def mark_failed() -> None:
    """The view's verdict: this attempt failed, so it counts against the limits of its route."""
    g.attempt_failed = True


def attempt_failed(_response) -> bool:
    """deduct_when: only attempts the view marked as failed count."""
    return bool(g.get("attempt_failed"))


def storage_uri(settings: Settings) -> str:
    """Redis where the broker is Redis; else the SQLite file data_dir/throttle.sqlite (SqliteStorage)."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return f"podium+sqlite:///{settings.data_dir / 'throttle.sqlite'}"


def init_throttle(app: Flask, settings: Settings) -> None:
    """Wire flask-limiter into the app with the shared store."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(settings))
    # A store that is down (Redis restarting) logs and lets attempts through rather than refusing every login.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _throttled(_exc):
        from podium.server.errors import error_response, wants_json
        wait = retry_after_s()
        message = f"too many failed attempts; try again in {(wait + 59) // 60} min"
        if wants_json():
            resp = error_response(429, "too_many_attempts", message)
        else:
            resp = app.response_class(render_template("throttled.html", message=message, me=None), 429)
        resp.headers["Retry-After"] = str(wait)
        return resp


def retry_after_s() -> int:
    """Seconds until the limit this request broke lets it through again."""
    current = limiter.current_limit
    return max(1, int(current.reset_at - time.time()) + 1) if current else 60


class SqliteStorage(Storage):
    """A `limits` store in a SQLite file, shared by every process on the host (fixed-window counters)."""

    STORAGE_SCHEME = ["podium+sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(uri.split(":///", 1)[1])  # podium+sqlite:////abs/path/throttle.sqlite
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Closed here, not left to the garbage collector: a sqlite3 connection is freed only by a cyclic collection,
        # and its close then checkpoints and deletes the -wal and -shm files at some unforeseeable moment.
        with closing(self._connect()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, "
                       "expires_at REAL NOT NULL)")

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT value, expires_at FROM counters WHERE key = ?", (key,)).fetchone()
            value = amount if row is None or row[1] <= now else row[0] + amount
            expires = now + expiry if row is None or row[1] <= now else row[1]
            db.execute("INSERT OR REPLACE INTO counters (key, value, expires_at) VALUES (?, ?, ?)", (key, value, expires))
            db.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            db.execute("COMMIT")
            return value
        finally:
            db.close()

    def _row(self, key: str):
        db = self._connect()
        try:
            return db.execute("SELECT value, expires_at FROM counters WHERE key = ? AND expires_at > ?",
                              (key, time.time())).fetchone()
        finally:
            db.close()

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            self._row("")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        db = self._connect()
        try:
            return db.execute("DELETE FROM counters").rowcount
        finally:
            db.close()

    def clear(self, key: str) -> None:
        db = self._connect()
        try:
            db.execute("DELETE FROM counters WHERE key = ?", (key,))
        finally:
            db.close()
