"""Receiving an uploaded model: streamed to the blob store while hashing, never held in memory."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flask import Request, current_app, g, request
from flask_login import current_user
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from podium.core.storage import HashingWriter, StorageFull, TooLarge
from podium.server.errors import ApiError
from podium.server.services import services

FIELD = "model"
DRAIN_CAP = 512 << 20  # past this, a refused body is not read to its end (the connection is closed instead)
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header (1-64 of letters, digits, '.', '_', ':', '-'), None without one; 400 if malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise ApiError(400, "bad_idempotency_key",
                       "the Idempotency-Key header must be 1 to 64 letters, digits, '.', '_', ':' or '-'")
    return key


def drain_body(cap: int = DRAIN_CAP) -> bool:
    """Read and drop what is left of the request body, so that the client, still sending, reads our answer.

    A server that answers and closes while the body is in flight makes the client see a connection reset
    (ERR_CONNECTION_RESET in a browser) instead of the answer. Returns False when more than `cap` was left.
    """
    if request.environ.get("podium.drained"):
        return True
    request.environ["podium.drained"] = True
    request.max_content_length = None  # the limit may be what refused the body; draining must still read it
    try:
        stream, left = request.stream, cap
        while left > 0:
            chunk = stream.read(min(left, 1 << 16))
            if not chunk:
                return True
            left -= len(chunk)
    except (OSError, ValueError, ClientDisconnected, RequestEntityTooLarge):
        return True
    return False


class PodiumRequest(Request):
    """A request whose multipart file parts stream straight into the blob store's temp dir, and whose body may be
    large only once the sender is known: an anonymous body larger than PODIUM_SMALL_BODY_KB is refused (413)
    before any of it is read."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None or not current_app:
            return super().max_content_length
        if g.get("api_user") is not None or getattr(current_user, "is_authenticated", False):
            return current_app.config["MAX_CONTENT_LENGTH"]
        return current_app.config["PODIUM_SMALL_BODY"]

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        store = self.environ.get("podium.store")
        if store is None:
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        writer = store.writer(self.environ.get("podium.max_bytes"))
        self.environ.setdefault("podium.writers", []).append(writer)
        return writer


def drain_after(response):
    """after_request: an answer to a request whose body was not read (a refusal) drains it first (see drain_body)."""
    if request.method in ("POST", "PUT", "PATCH") and request.content_length != 0:
        drain_body()
    return response


@dataclass
class Upload:
    """A received model file, still in the store's temp dir."""

    writer: HashingWriter
    filename: str

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def size(self) -> int:
        return self.writer.size

    def commit(self) -> str:
        """Keep it in the store under its sha256."""
        return services().store.commit(self.writer)

    def discard(self) -> None:
        """Delete the temporary file."""
        self.writer.discard()


def _discard_all(keep: HashingWriter | None = None) -> None:
    for w in request.environ.get("podium.writers", []):
        if w is not keep:
            w.discard()


def receive_model(max_bytes: int) -> Upload:
    """Parse the multipart body, streaming field `model` to disk; 400/413 with JSON errors on bad input."""
    if request.content_length is not None and request.content_length > max_bytes + 64 * 1024:
        raise ApiError(413, "too_large", f"the model is larger than this challenge's limit of {max_bytes / (1 << 20):g} MB")
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, "bad_content_type", "send the model as multipart/form-data with the field 'model'")
    request.environ["podium.store"] = services().store
    request.environ["podium.max_bytes"] = max_bytes
    request.max_content_length = max_bytes + 64 * 1024
    try:
        files = request.files
    except (TooLarge, RequestEntityTooLarge):
        _discard_all()
        raise ApiError(413, "too_large", f"the model is larger than this challenge's limit of {max_bytes / (1 << 20):g} MB")
    except StorageFull:
        _discard_all()
        raise
    except ValueError as exc:
        _discard_all()
        raise ApiError(400, "bad_request", f"could not read the upload: {exc}")
    storage = files.get(FIELD)
    if storage is None or not isinstance(storage.stream, HashingWriter):
        _discard_all()
        names = ", ".join(sorted(files.keys())) or "none"
        raise ApiError(400, "missing_field", f"the model file must be in the multipart field 'model' (got fields: {names})")
    writer = storage.stream
    _discard_all(keep=writer)
    filename = storage.filename or "model.pt"
    if "/" in filename or "\\" in filename or filename in (".", "..") or "\x00" in filename or len(filename) > 255:
        writer.discard()
        raise ApiError(400, "bad_filename", "the file name must be a plain name such as model.pt, without a path")
    if writer.size == 0:
        writer.discard()
        raise ApiError(422, "invalid_model", "the uploaded file is empty")
    writer.close()
    return Upload(writer=writer, filename=filename)
