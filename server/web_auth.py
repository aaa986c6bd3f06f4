"""Browser sessions (Flask-Login): who is logged in on the web pages."""
from __future__ import annotations

from flask import Flask
from flask_login import LoginManager, current_user

from server.models import User
from server.services import db_session

login_manager = LoginManager()
login_manager.login_view = "web.login"


class SessionUser:
    """Flask-Login's view of a Podium user (ids only; the row is loaded per request)."""

    def __init__(self, user: User):
        self.user = user
        self.id = user.id
        self.is_authenticated = True
        self.is_active = True
        self.is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)


@login_manager.user_loader
def _load_user(user_id: str):
    user = db_session().get(User, int(user_id)) if user_id.isdigit() else None
    return SessionUser(user) if user else None


def init_login(app: Flask) -> None:
    """Wire Flask-Login into the app."""
    login_manager.init_app(app)


def session_user() -> User | None:
    """The logged-in user of this browser session, if any."""
    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user.user
    return None
