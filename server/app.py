"""The Flask application factory."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from podium.core.config import Settings
from podium.server import formatting
from podium.server.api.auth import current_user
from podium.server.api.instructor import classroom_api
from podium.server.api.public import api
from podium.server.api.spec import MAX_ROW_ID
from podium.server.api.teams import teams_api
from podium.server.errors import register_error_handlers
from podium.server.headers import init_security_headers
from podium.server.links import absolute_url
from podium.server.metrics import metrics
from podium.server.services import Services, close_db_session, db_session
from podium.server.throttle import init_throttle
from podium.server.uploads import PodiumRequest, drain_after
from podium.server.web.auth import exempt_from_csrf, init_login, session_user
from podium.server.web.lti import init_lti
from podium.server.web.public import web


class RowId(IntegerConverter):
    """<int:...> in URLs: a database id, so a number past the id column's range is 404 (not a 500 from the driver)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def viewer():
    """Who is asking: the API's caller (token, or login cookie on reads) under /api, else the logged-in user."""
    return current_user(required=False) if request.path.startswith("/api/") else session_user()


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for these settings (from the environment when none are given)."""
    settings = settings or Settings.from_env()
    settings.check()
    app = Flask(__name__)
    app.request_class = PodiumRequest
    app.url_map.converters["int"] = RowId
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=int(settings.max_upload_mb * (1 << 20)) + 64 * 1024,
        PODIUM_SMALL_BODY=settings.small_body_kb * 1024,  # any anonymous request's body (podium.server.uploads)
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.extensions["podium"] = Services(settings)
    app.extensions["podium_viewer"] = viewer  # podium.server.lookup asks it, so drafts 404 for students
    init_login(app)
    formatting.register(app)
    register_error_handlers(app)
    exempt_from_csrf(api)
    exempt_from_csrf(classroom_api)
    exempt_from_csrf(teams_api)
    app.register_blueprint(api)
    app.register_blueprint(classroom_api)
    app.register_blueprint(teams_api)
    app.register_blueprint(web)
    app.register_blueprint(metrics)
    init_lti(app)
    init_security_headers(app, settings)  # after init_lti: it runs first, then LTI widens frame-ancestors
    init_throttle(app, settings)
    app.teardown_appcontext(close_db_session)
    app.add_template_global(absolute_url)
    if settings.env == "production" and not settings.public_url:
        logging.getLogger(__name__).warning("PODIUM_PUBLIC_URL is not set: absolute links follow each request's "
                                            "Host header; set it to the URL students use")
    app.after_request(drain_after)
    if settings.trusted_proxies:  # client address and scheme from the proxies' headers (throttling, HSTS)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)

    @app.get("/healthz")
    def healthz():
        """Liveness and database reachability."""
        db_session().execute(text("SELECT 1"))
        return jsonify({"status": "ok"})

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app
