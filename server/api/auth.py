"""Who is calling the API: the Bearer token's user (or the browser session for reads), and the instructor check."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from podium.core.models import User
from podium.server.auth import user_for_token
from podium.server.errors import ApiError
from podium.server.services import db_session
from podium.server.web.auth import session_user


def current_user(required: bool = True) -> User | None:
    """The user behind the Bearer token (or the logged-in web session); 401 when required and missing."""
    if g.get("api_user") is not None:
        return g.api_user
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "use the header 'Authorization: Bearer <token>'")
        user = user_for_token(db_session(), token.strip())
        if user is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token")
        g.api_user = user
        return user
    # Browser pages may read the API with their login cookie; writes need a token (or a CSRF-checked form).
    user = session_user() if request.method in ("GET", "HEAD") else None
    if user is None and required:
        raise ApiError(401, "unauthorized", "authentication required: send 'Authorization: Bearer <token>' "
                       "(the podium command line sends the token in PODIUM_TOKEN)")
    g.api_user = user
    return user


def instructor_only(view):
    """API views for instructors: 401 without credentials, 403 for students; current_user() is then the caller."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user().is_instructor:
            raise ApiError(403, "forbidden", "only instructors may do this")
        return view(*args, **kwargs)
    return wrapper
