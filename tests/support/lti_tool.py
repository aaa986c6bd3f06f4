"""Podium's web app served in this test process on 127.0.0.1, for LTI tests that need no worker."""
from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.serving import make_server

from podium.core.config import Settings
from podium.core.db import Database
from podium.core.lti.models import LtiLaunchLink, LtiResourceLink, LtiUser
from podium.core.lti.services import TOKENS
from podium.core.migrate import upgrade
from podium.core.models import Challenge, User


class ToolServer:
    """create_app() on a migrated SQLite database, on a free port, in a daemon thread."""

    def __init__(self, data_dir: Path, database_url: str | None = None):
        from podium.server.app import create_app
        env = {"PODIUM_DATA_DIR": str(data_dir)}
        if database_url:
            env["PODIUM_DATABASE_URL"] = database_url
        self.settings = Settings.from_env(env)
        upgrade(self.settings.database_url)
        self.db = Database(self.settings.database_url)
        self.app = create_app(self.settings)
        self._srv = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._srv.server_port}"
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        TOKENS._tokens.clear()

    def stop(self) -> None:
        """Shut the server down and release the database."""
        self._srv.shutdown()
        self.db.dispose()


def add_challenge(session, slug: str = "cnn-1", title: str = "CNN challenge 1") -> Challenge:
    """A challenge row with what LTI needs (no bundle: these tests never score)."""
    challenge = Challenge(slug=slug, title=title, kind="image", labels=["a", "b"], input_shape=[1, 8, 8],
                          test_sha256="0" * 64, n_test=10)
    session.add(challenge)
    session.flush()
    return challenge


def counts(db: Database) -> dict:
    """Row counts of everything a launch may create."""
    with db.session() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (User, LtiUser, LtiResourceLink, LtiLaunchLink)}


def user_of(db: Database, sub: str) -> User:
    """The Podium user a platform `sub` became."""
    with db.session() as s:
        return s.scalar(select(User).join(LtiUser, LtiUser.user_id == User.id).where(LtiUser.sub == sub))
