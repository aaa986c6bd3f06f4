"""Receiving an uploaded model: streamed to the blob store while hashing, never held in memory."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Request, request
from werkzeug.exceptions import RequestEntityTooLarge

from server.errors import ApiError
from server.services import services
from server.storage import HashingWriter, TooLarge

FIELD = "model"


class PodiumRequest(Request):
    """A request whose multipart file parts stream straight into the blob store's temp dir."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        store = self.environ.get("podium.store")
        if store is None:
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        writer = store.writer(self.environ.get("podium.max_bytes"))
        self.environ.setdefault("podium.writers", []).append(writer)
        return writer


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
        raise ApiError(413, "too_large", f"the model is larger than this challenge's limit of {max_bytes // (1 << 20)} MB")
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, "bad_content_type", "send the model as multipart/form-data with the field 'model'")
    request.environ["podium.store"] = services().store
    request.environ["podium.max_bytes"] = max_bytes
    request.max_content_length = max_bytes + 64 * 1024
    try:
        files = request.files
    except (TooLarge, RequestEntityTooLarge):
        _discard_all()
        raise ApiError(413, "too_large", f"the model is larger than this challenge's limit of {max_bytes // (1 << 20)} MB")
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
