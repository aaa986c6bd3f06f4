"""JSON errors for the API: {"error": {"code", "message"}} with the right HTTP status."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from podium.core.storage import StorageFull, StoreError
from podium.server.fields import FieldError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered to the client as JSON."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra):
    """Build the JSON error body and status."""
    body = {"error": {"code": code, "message": message, **extra}}
    resp = jsonify(body)
    resp.status_code = status
    return resp


def wants_json() -> bool:
    """True for API paths and clients that ask for JSON."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register_error_handlers(app: Flask) -> None:
    """JSON for API paths (and clients asking for JSON); HTML pages keep Flask's own pages."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not wants_json():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            message = "the upload is larger than this server accepts"
        return error_response(exc.code or 500, code, message)

    @app.errorhandler(FieldError)
    def _bad_field(exc: FieldError):
        if wants_json():
            return error_response(422, "invalid_field", str(exc))
        return str(exc), 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _db_down(exc):
        if "disk is full" in str(getattr(exc, "orig", exc)):  # SQLite on a full data dir: nothing was written
            return _storage_full(exc)
        log.error("database unavailable: %s", exc.__class__.__name__)
        resp = error_response(503, "database_unavailable",
                              "the database is not reachable right now; please retry in a minute")
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(StorageFull)
    def _storage_full(exc):
        log.error("storage full: %s", exc)
        resp = error_response(507, "storage_full", "the server's storage is full, so your upload was not kept; "
                              "nothing counts against your limit. Please try again later (the operator must free space)")
        resp.headers["Retry-After"] = "300"
        return resp

    @app.errorhandler(StoreError)
    def _store_down(exc):
        log.error("blob store unavailable: %s", exc)
        resp = error_response(503, "storage_unavailable",
                              "model storage is not reachable right now; please retry in a minute")
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal_error", "something went wrong on the server")
        return "Internal server error", 500
