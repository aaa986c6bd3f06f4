"""Which scoring messages the broker still holds, so the reaper re-publishes only the ones really lost.

A Redis restarted without persistence, or a worker killed after fetching from the SQLite broker
(whose fetched messages stay invisible forever), leaves rows queued with no message to carry them.
Reading the broker directly tells those apart from rows that are merely waiting in a long queue.
"""
from __future__ import annotations

import base64
import json
import logging

from podium.core.celery_app import SCORE_TASK

log = logging.getLogger(__name__)

# kombu's Redis transport keeps a list per queue and priority step, and a hash of fetched, unacked messages.
REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
REDIS_UNACKED = "unacked"


def parse_message(raw: str | bytes) -> tuple[int, int] | None:
    """(submission_id, attempt) of a serialized scoring message, or None for anything else."""
    try:
        msg = json.loads(raw)
        if msg.get("headers", {}).get("task") != SCORE_TASK:
            return None
        body = msg["body"]
        if msg.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0]), int(args[1]) if len(args) > 1 else 1
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def live_messages(celery_app, queues: set[str]) -> set[tuple[int, int]] | None:
    """(submission_id, attempt) of every scoring message waiting or being worked on; None if this broker can't tell."""
    url = str(celery_app.conf.broker_url or "")
    try:
        if url.startswith(("redis://", "rediss://")):
            return _redis(celery_app, queues)
        if url.startswith("podiumsqla+") or url.startswith("sqla+"):
            return _sqla(url.split("+", 1)[1])
    except Exception as exc:  # the broker is down or unreadable: fall back to the slow, blind rule
        log.warning("could not read the broker's queues: %s", exc)
    return None


def _redis(celery_app, queues: set[str]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    with celery_app.connection_for_read() as conn:
        client = conn.default_channel.client
        raws = []
        for q in queues:
            for suffix in REDIS_PRIORITY_SUFFIXES:
                raws.extend(client.lrange(q + suffix, 0, -1))
        for entry in client.hvals(REDIS_UNACKED):
            try:
                raws.append(json.loads(entry)[0])
            except (ValueError, IndexError, TypeError):
                continue
    for raw in raws:
        key = parse_message(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))
        if key:
            found.add(key)
    return found


def _sqla(db_url: str) -> set[tuple[int, int]]:
    # Fetched messages are invisible and never come back on this transport, so only visible ones are live.
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            try:
                rows = conn.execute(text("SELECT payload FROM kombu_message WHERE visible")).all()
            except Exception as exc:
                if "no such table" in str(exc) or "does not exist" in str(exc):
                    return set()  # nothing was ever published
                raise
    finally:
        engine.dispose()
    return {key for (payload,) in rows if (key := parse_message(payload))}
