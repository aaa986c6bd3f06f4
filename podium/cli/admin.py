"""Server-side verbs of the CLI: database, users, tokens, challenges (they work on the configured database)."""
from __future__ import annotations

import os
from pathlib import Path

from podium.core.config import Settings


def db_upgrade(settings: Settings) -> None:
    """Apply every Alembic migration."""
    from podium.core.migrate import upgrade
    upgrade(settings.database_url)


def data_dir_label(settings: Settings) -> str:
    """How to name the data dir to the person at the terminal: ./var by default, else where PODIUM_DATA_DIR points."""
    if os.environ.get("PODIUM_DATA_DIR"):
        return f"{settings.data_dir} (PODIUM_DATA_DIR)"
    return f"./var ({settings.data_dir})"


def require_database(settings: Settings, connect: bool = True) -> None:
    """NoDatabase with what to do, unless the configured database exists and is migrated (see podium.core.migrate)."""
    from podium.core.migrate import require_database as check
    check(settings.database_url, data_dir_label(settings), connect=connect)


def _db(settings: Settings):
    from podium.core.db import Database
    require_database(settings)
    return Database(settings.database_url)


def add_user(settings: Settings, name: str, role: str, password: str | None = None) -> None:
    """Create a user."""
    from podium.server.auth import create_user
    db = _db(settings)
    try:
        with db.session() as s:
            create_user(s, name, role, password=password)
    finally:
        db.dispose()


def new_token(settings: Settings, name: str, label: str = "cli") -> str:
    """Issue an API token for an existing user and return it."""
    from sqlalchemy import select

    from podium.core.models import User
    from podium.server.auth import issue_token
    db = _db(settings)
    try:
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == name))
            if user is None:
                raise ValueError(f"no user named {name!r}; create it with: podium user add {name} --role student")
            return issue_token(s, user, label)
    finally:
        db.dispose()


def add_challenge(settings: Settings, path: Path, replace: bool = False, publish: bool = False,
                  notes: list[str] | None = None) -> str:
    """Add a challenge from a bundle folder or zip (a draft unless publish); returns its slug, notes get the warnings."""
    from podium.core.storage import open_store
    from podium.server.challenge_admin import publish_bundle, publish_zip
    db = _db(settings)
    try:
        with db.session() as s:
            create = publish_zip if Path(path).is_file() else publish_bundle
            return create(s, open_store(settings), Path(path), replace=replace, publish=publish, notes=notes).slug
    finally:
        db.dispose()


def challenge_state(settings: Settings, slug: str, action: str) -> tuple[str, bool]:
    """publish | unpublish | archive a challenge; (its state now, whether it changed). ValueError for an unknown slug."""
    from sqlalchemy import select

    from podium.core.models import Challenge
    from podium.server.lifecycle import move
    db = _db(settings)
    try:
        with db.session() as s:
            challenge = s.scalar(select(Challenge).where(Challenge.slug == slug))
            if challenge is None:
                raise ValueError(f"no challenge named {slug!r} (`podium challenge add DIR` creates one)")
            changed = move(challenge, action)
            s.commit()
            return challenge.state, changed
    finally:
        db.dispose()


def slug_of(bundle: Path) -> str:
    """The slug a bundle folder declares."""
    from podium.core.bundle.spec import parse_spec
    return parse_spec((Path(bundle) / "challenge.toml").read_text()).slug
