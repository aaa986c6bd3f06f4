"""Server-side verbs of the CLI: database, users, tokens, challenges (they work on the configured database)."""
from __future__ import annotations

from pathlib import Path

from podium.config import Settings


def db_upgrade(settings: Settings) -> None:
    """Apply every Alembic migration."""
    from server.migrate import upgrade
    upgrade(settings.database_url)


def _db(settings: Settings):
    from server.db import Database
    return Database(settings.database_url)


def add_user(settings: Settings, name: str, role: str, password: str | None = None) -> None:
    """Create a user."""
    from server.auth import create_user
    db = _db(settings)
    try:
        with db.session() as s:
            create_user(s, name, role, password=password)
    finally:
        db.dispose()


def new_token(settings: Settings, name: str, label: str = "cli") -> str:
    """Issue an API token for an existing user and return it."""
    from sqlalchemy import select

    from server.auth import issue_token
    from server.models import User
    db = _db(settings)
    try:
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == name))
            if user is None:
                raise ValueError(f"no user named {name!r}; create it with: podium user add {name} --role student")
            return issue_token(s, user, label)
    finally:
        db.dispose()


def add_challenge(settings: Settings, path: Path, replace: bool = False) -> str:
    """Publish a challenge from a bundle folder or zip; returns its slug."""
    from server.challenge_admin import publish_bundle, publish_zip
    from server.storage import open_store
    db = _db(settings)
    try:
        with db.session() as s:
            publish = publish_zip if Path(path).is_file() else publish_bundle
            return publish(s, open_store(settings), Path(path), replace=replace).slug
    finally:
        db.dispose()


def slug_of(bundle: Path) -> str:
    """The slug a bundle folder declares."""
    from podium.bundle import parse_spec
    return parse_spec((Path(bundle) / "challenge.toml").read_text()).slug
