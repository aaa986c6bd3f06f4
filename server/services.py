"""What a request needs from the outside world: settings, database, blob store, task queue."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask import current_app, g
from sqlalchemy.orm import Session

from podium.core.celery_app import create_celery
from podium.core.config import Settings
from podium.core.db import Database
from podium.core.storage import LocalStore, open_store


@dataclass
class Services:
    """Long-lived objects of one web process."""

    settings: Settings

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def store(self) -> LocalStore:
        return open_store(self.settings)

    @cached_property
    def celery(self):
        return create_celery(self.settings)


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["podium"]


def db_session() -> Session:
    """The request's one DB session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = services().db.sessions()
    return g.db_session


def close_db_session(_exc=None) -> None:
    """Teardown: roll back anything uncommitted and close the request's session."""
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
