"""The embedded SQLite broker: WAL mode, a message delivered once, an empty poll that takes no write lock."""
from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from kombu import Connection
from kombu.transport.virtual import Empty

from podium.core.celery_app import create_celery
from podium.core.config import Settings


@pytest.fixture()
def broker(tmp_path):
    settings = Settings.from_env({"PODIUM_DATA_DIR": str(tmp_path)})
    app = create_celery(settings)  # registers the transport alias
    with Connection(app.conf.broker_url) as conn:
        yield conn, tmp_path / "broker.sqlite"


def test_broker_file_is_in_wal_mode_and_delivers_a_message_once(broker):
    conn, path = broker
    channel = conn.default_channel
    queue = conn.SimpleQueue("podium", channel=channel)
    queue.put({"submission_id": 7, "attempt": 1})
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    message = queue.get(timeout=5)
    assert message.payload == {"submission_id": 7, "attempt": 1}
    message.ack()
    with pytest.raises(Empty):
        channel._get("podium")
    queue.close()


def test_an_empty_poll_takes_no_write_lock(broker):
    conn, path = broker
    channel = conn.default_channel
    conn.SimpleQueue("podium", channel=channel).close()
    with closing(sqlite3.connect(path, timeout=0.1)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(Empty):
            channel._get("podium")  # the stock transport would wait for the lock here
        other.rollback()
