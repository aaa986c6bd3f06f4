"""Browser sessions (Flask-Login), CSRF protection of every form, and role checks for pages."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort, session
from flask_login import LoginManager, current_user, login_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select

from podium.core.lti.models import LtiUser
from podium.core.models import User
from podium.server.services import db_session

login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = "Please log in to see this page."
csrf = CSRFProtect()


class SessionUser:
    """Flask-Login's view of a Podium user: the session holds "id:session_version" (the row is loaded per request)."""

    def __init__(self, user: User):
        self.user = user
        self.id = user.id
        self.is_authenticated = True
        self.is_active = True
        self.is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.user.session_version or 0}"


@login_manager.user_loader
def _load_user(session_id: str):
    user_id, _, version = session_id.partition(":")
    user = db_session().get(User, int(user_id)) if user_id.isdigit() and version.isdigit() else None
    # A session from before the user's last logout or password change carries an older version: it is over.
    if user is None or int(version) != (user.session_version or 0):
        return None
    # An unclaimed roster entry has no password and cannot hold a session; an LMS account (LTI) has none either
    # but signs in through a validated launch.
    if not (user.password_hash or _has_lti_identity(user.id)):
        return None
    return SessionUser(user)


def begin_session(user: User) -> None:
    """Sign user in on this browser with a fresh session and a fresh CSRF token (nothing of the anonymous one kept)."""
    flashes = session.get("_flashes")
    session.clear()
    if flashes:
        session["_flashes"] = flashes
    login_user(SessionUser(user))


def keep_signed_in(user: User) -> None:
    """After the user's session version rose (a new password): this browser's session carries the new one."""
    login_user(SessionUser(user))


def _has_lti_identity(user_id: int) -> bool:
    return db_session().scalar(select(LtiUser.id).where(LtiUser.user_id == user_id).limit(1)) is not None


def init_login(app: Flask) -> None:
    """Wire Flask-Login and CSRF protection into the app (the token-authenticated API is exempt)."""
    login_manager.init_app(app)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a form left open all afternoon still posts
    csrf.init_app(app)


def exempt_from_csrf(blueprint) -> None:
    """Token-authenticated JSON blueprints need no CSRF token (they never accept the login cookie for writes)."""
    csrf.exempt(blueprint)


def session_user() -> User | None:
    """The logged-in user of this browser session, if any."""
    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user.user
    return None


def login_required(view):
    """Pages for logged-in users: anonymous visitors go to the login page."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if session_user() is None:
            return login_manager.unauthorized()
        return view(*args, **kwargs)
    return wrapper


def instructor_required(view):
    """Pages for instructors: anonymous visitors go to the login page, students get 403."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        user = session_user()
        if user is None:
            return login_manager.unauthorized()
        if not user.is_instructor:
            abort(403)
        return view(*args, **kwargs)
    return wrapper
