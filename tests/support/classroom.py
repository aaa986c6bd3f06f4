"""A real app on a fresh database, driven through its forms like a browser (no worker process)."""
from __future__ import annotations

import io
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from podium.core import states
from podium.core.models import Challenge, Score, Submission, User, utcnow
from tests.support import live
from tests.support.bundles import write_tiny_bundle

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A Flask test client that logs in through the form and carries the CSRF token like a browser does."""

    def __init__(self, app, username: str | None = None):
        self.client = app.test_client()
        self.token = None
        if username:
            self.login(username, live.password_for(username))

    def csrf(self, page: str = "/login") -> str:
        html = self.client.get(page).get_data(as_text=True)
        self.token = CSRF_RE.search(html).group(1)
        return self.token

    def login(self, username: str, password: str):
        resp = self.post("/login", {"username": username, "password": password})
        self.token = None  # a login rotates the CSRF token: the next form fetches the new one
        return resp

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token or self.csrf()
        return self.client.post(path, data=data, **kw)


class Classroom:
    """A real app on a fresh SQLite database with a tiny challenge and three users (no worker process)."""

    def __init__(self, root: Path, template: Classroom | None = None, database_url: str | None = None):
        self.settings = live.settings_for(root / "var", database_url)
        if template is None:
            bundle = write_tiny_bundle(root / "tiny-bundle")
            self.tokens = live.prepare_database(self.settings, [bundle],
                                                {"alice": "student", "bob": "student", "prof": "instructor"})
        else:  # a copy of a prepared database and blob store: much faster than migrating and hashing again
            shutil.copytree(template.settings.data_dir, self.settings.data_dir)
            self.tokens = template.tokens
        from podium.server.app import create_app
        self.app = create_app(self.settings)
        self.app.config["TESTING"] = True
        self.db = self.app.extensions["podium"].db

    def session(self):
        return self.db.session()

    def user(self, s, name: str) -> User:
        return s.scalar(select(User).where(User.username == name))

    def challenge(self, s, slug: str = "tiny") -> Challenge:
        return s.scalar(select(Challenge).where(Challenge.slug == slug))

    def add_scored(self, username: str, public: float, private: float, *, sha: str | None = None,
                   slug: str = "tiny", minutes_ago: float = 0.0) -> int:
        """Write a scored submission exactly as the worker records one (claim, Score row, finish_scored)."""
        if sha is None:  # a distinct stored file per submission, so the model download works
            sha, _ = self.app.extensions["podium"].store.put_stream(io.BytesIO(os.urandom(32)))
        with self.session() as s:
            user, challenge = self.user(s, username), self.challenge(s, slug)
            sub = Submission(challenge_id=challenge.id, user_id=user.id, status=states.QUEUED,
                             model_sha256=sha, model_size=10,
                             created_at=utcnow() - timedelta(minutes=minutes_ago))
            s.add(sub)
            s.flush()
            assert states.claim(s, sub.id, 1, "test-worker", 60)
            n = len(challenge.labels)
            confusion = [[6 if i == j else 1 for j in range(n)] for i in range(n)]
            s.add(Score(submission_id=sub.id, challenge_id=challenge.id, user_id=user.id, metric="accuracy",
                        public_score=public, private_score=private, n_public=60, n_private=60,
                        public_per_class=[0.75] * n, public_confusion=confusion,
                        timings={"worker_total_s": 0.12}, device="cpu"))
            assert states.finish_scored(s, sub.id, 1)
            return sub.id

    def add_failed(self, username: str, error: str, slug: str = "tiny") -> int:
        """A submission the worker failed with an error text."""
        with self.session() as s:
            user, challenge = self.user(s, username), self.challenge(s, slug)
            sub = Submission(challenge_id=challenge.id, user_id=user.id, status=states.QUEUED,
                             model_sha256="f" * 64, model_size=10)
            s.add(sub)
            s.flush()
            assert states.fail(s, sub.id, error)
            return sub.id
