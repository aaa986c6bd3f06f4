"""Settings read from the environment, in one place for the web, the worker and the CLI."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

DEV_SECRET = "podium-development-secret"


@dataclass(frozen=True)
class Settings:
    """Server-side configuration; build it with Settings.from_env() or pass your own in tests."""

    data_dir: Path
    database_url: str
    broker_url: str
    secret_key: str = DEV_SECRET
    env: str = "development"
    # The largest upload any challenge may allow; per-challenge limits are checked on top.
    max_upload_mb: float = 200.0
    broker_polling_interval: float = 0.1
    # Redis re-delivers an unacked message after this many seconds; it must exceed the longest scoring time.
    visibility_timeout_s: int = 3600
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        """Read PODIUM_* variables; defaults give the embedded SQLite set-up in ./var."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("PODIUM_DATA_DIR", "./var")).resolve()
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("PODIUM_DATABASE_URL") or f"sqlite:///{data_dir / 'podium.sqlite'}",
            broker_url=env.get("PODIUM_BROKER_URL") or f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
            secret_key=env.get("PODIUM_SECRET_KEY", DEV_SECRET),
            env=env.get("PODIUM_ENV", "development"),
            max_upload_mb=float(env.get("PODIUM_MAX_UPLOAD_MB", "200")),
            broker_polling_interval=float(env.get("PODIUM_BROKER_POLL_S", "0.1")),
            visibility_timeout_s=int(env.get("PODIUM_VISIBILITY_TIMEOUT_S", "3600")),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Fail fast on settings that are unsafe for production."""
        if self.env == "production" and self.secret_key in ("", DEV_SECRET):
            raise RuntimeError("PODIUM_SECRET_KEY must be set to a random value when PODIUM_ENV=production")

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed (for tests and the demo)."""
        return replace(self, **changes)

    @property
    def blob_dir(self) -> Path:
        """Where content-addressed model files and test sets live (local storage)."""
        return self.data_dir / "blobs"


def new_secret() -> str:
    """A fresh random secret, e.g. for a token or a demo secret key."""
    return secrets.token_urlsafe(32)
