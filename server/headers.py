"""Security headers on every response, and Secure cookies plus HSTS in production."""
from __future__ import annotations

from flask import Flask, Response

from podium.core.config import Settings

# No inline script anywhere (podium.js is the only script); style attributes carry computed widths and colours.
# frame-ancestors: Podium's own pages only; podium.server.lti.frames widens it to the registered LMS origins for
# LTI endpoints and LTI sessions.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
       "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
HSTS = "max-age=31536000; includeSubDomains"


def init_security_headers(app: Flask, settings: Settings) -> None:
    """Register the headers; call after init_lti (after_request hooks run last-registered first)."""
    production = settings.env == "production"
    if production:
        app.config["SESSION_COOKIE_SECURE"] = True

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
