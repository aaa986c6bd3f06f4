"""The Flask application factory."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy import text

from podium.config import Settings
from server.api import api
from server.api_instructor import classroom_api
from server import formatting
from server.errors import register_error_handlers
from server.metrics import metrics
from server.services import Services, close_db_session, db_session
from server.uploads import PodiumRequest
from server.web import web
from server.web_auth import exempt_from_csrf, init_login


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for these settings (from the environment when none are given)."""
    settings = settings or Settings.from_env()
    settings.check()
    app = Flask(__name__)
    app.request_class = PodiumRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=int(settings.max_upload_mb * (1 << 20)) + 64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.extensions["podium"] = Services(settings)
    init_login(app)
    formatting.register(app)
    register_error_handlers(app)
    exempt_from_csrf(api)
    exempt_from_csrf(classroom_api)
    app.register_blueprint(api)
    app.register_blueprint(classroom_api)
    app.register_blueprint(web)
    app.register_blueprint(metrics)
    app.teardown_appcontext(close_db_session)

    @app.get("/healthz")
    def healthz():
        """Liveness and database reachability."""
        db_session().execute(text("SELECT 1"))
        return jsonify({"status": "ok"})

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app
