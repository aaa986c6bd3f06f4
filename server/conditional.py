"""Conditional GETs of a board: an ETag and Last-Modified from the board's last change, 304 when unchanged.

The ETag names everything a board's response depends on (its version, the reveal, who looks and which
page), so an unchanged board costs one primary-key read instead of a page.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from flask import Response, request
from sqlalchemy.orm import Session

from podium.core import board
from podium.core.models import Challenge


def board_etag(session: Session, challenge: Challenge, *parts) -> tuple[str, datetime | None]:
    """(ETag, Last-Modified) of a response about this challenge's board that also depends on `parts`."""
    version, changed_at = board.version(session, challenge.id)
    raw = "|".join(str(p) for p in (challenge.id, challenge.slug, challenge.created_at, version, changed_at,
                                    challenge.revealed_at, *parts))
    return hashlib.sha256(raw.encode()).hexdigest()[:32], changed_at


def not_modified(etag: str, changed_at: datetime | None) -> Response | None:
    """A 304 when the request's validators still match, else None (If-None-Match wins over If-Modified-Since)."""
    if request.if_none_match:
        fresh = request.if_none_match.contains(etag)
    else:
        since = request.if_modified_since
        fresh = since is not None and changed_at is not None and changed_at.replace(microsecond=0) <= since
    return with_validators(Response(status=304), etag, changed_at) if fresh else None


RENDER_WAIT_S = 10.0


class Rendered:
    """The last few rendered bodies of boards, by ETag, in this process: a changed board is rendered once per
    process and version, not once per viewer (a lecture hall of projectors refreshes the same page)."""

    def __init__(self, size: int = 64):
        self.size, self.bodies, self.lock = size, OrderedDict(), threading.Lock()
        self.pending: dict[str, threading.Event] = {}

    def get(self, etag: str, render: Callable[[], bytes]) -> bytes:
        """The body rendered for this ETag, rendering it on a miss; viewers who miss together wait for one render."""
        with self.lock:
            body = self.bodies.get(etag)
            if body is not None:
                self.bodies.move_to_end(etag)
                return body
            waiting = self.pending.get(etag)
            if waiting is None:
                done = self.pending[etag] = threading.Event()
        if waiting is not None:  # another thread renders this version: a board change costs one render, not 50
            waiting.wait(RENDER_WAIT_S)
            with self.lock:
                body = self.bodies.get(etag)
            return body if body is not None else render()
        try:
            body = render()
            with self.lock:
                self.bodies[etag] = body
                while len(self.bodies) > self.size:
                    self.bodies.popitem(last=False)
            return body
        finally:
            with self.lock:
                self.pending.pop(etag, None)
            done.set()


rendered = Rendered()


def with_validators(resp: Response, etag: str, changed_at: datetime | None) -> Response:
    """Set ETag, Last-Modified and no-cache (the client keeps the copy and asks again every time)."""
    resp.set_etag(etag)
    if changed_at is not None:
        resp.last_modified = changed_at
    resp.headers["Cache-Control"] = "no-cache"
    return resp
