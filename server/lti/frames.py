"""Living inside the LMS's iframe: a session cookie that crosses sites, and who may frame Podium."""
from __future__ import annotations

import re
import time

from flask import Flask, Response, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from podium.server.lti.registry import frame_ancestors
from podium.server.services import db_session

LTI_SESSION = "lti"          # session key set by a launch
ORIGINS_TTL_S = 30.0         # registered origins are read again at most this often per process


class LtiSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session; a session begun by an LTI launch gets SameSite=None; Secure.

    Inside the LMS's iframe Podium is a third-party site, and browsers only send a third-party cookie marked
    SameSite=None, which they only accept when Secure. Password sessions keep the app's SameSite=Lax.
    """

    def get_cookie_samesite(self, app: Flask) -> str | None:
        return "None" if session.get(LTI_SESSION) else super().get_cookie_samesite(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        return True if session.get(LTI_SESSION) else super().get_cookie_secure(app)


class FrameOrigins:
    """'self' and every registered platform's frame origins, read again at most every ORIGINS_TTL_S (one per app)."""

    def __init__(self):
        self._at, self._origins = float("-inf"), []

    def get(self) -> list[str]:
        """The frame-ancestors sources."""
        if time.monotonic() - self._at > ORIGINS_TTL_S:
            self._at, self._origins = time.monotonic(), frame_ancestors(db_session())
        return ["'self'", *self._origins]


def with_frame_ancestors(csp: str | None, ancestors: list[str]) -> str:
    """A Content-Security-Policy value whose frame-ancestors directive is exactly `ancestors`."""
    directive = "frame-ancestors " + " ".join(ancestors)
    kept = [d.strip() for d in (csp or "").split(";") if d.strip() and not re.match(r"frame-ancestors\b", d.strip())]
    return "; ".join([*kept, directive])


def allow_lms_frames(response: Response) -> Response:
    """after_request: LTI endpoints and pages of an LTI session may be framed by the registered platforms only."""
    if request.path.startswith("/lti/") or session.get(LTI_SESSION):
        response.headers["Content-Security-Policy"] = with_frame_ancestors(
            response.headers.get("Content-Security-Policy"), current_app.extensions["podium_lti_frames"].get())
        # X-Frame-Options cannot list origins; frame-ancestors supersedes it where both are present.
        response.headers.pop("X-Frame-Options", None)
    return response
