"""Backups while Podium runs: a consistent database snapshot plus every blob it refers to, and the way back.

The snapshot comes first (SQLite's online backup API copies one consistent state while web and workers
keep writing), then the blobs named by the snapshot: blobs are written before the rows that name them
and never change, so every blob the snapshot needs is in the store by then. manifest.json is written
last; a folder without it is not a backup.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from podium.core.models import utcnow
from podium.core.storage import CHUNK, check_sha, open_store

MANIFEST = "manifest.json"
DB_FILE = "podium.sqlite"
BLOBS = "blobs"
# Every column holding the sha256 of a blob in the store.
BLOB_COLUMNS = (("submissions", "model_sha256"), ("challenges", "test_sha256"), ("challenges", "train_sha256"),
                ("challenges", "starter_sha256"))


class BackupError(ValueError):
    """A backup or restore that cannot go ahead, with the reason."""


@dataclass
class Report:
    """What a backup or restore did."""

    directory: Path
    blobs: int
    bytes: int
    submissions: int


def _sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupError("podium backup snapshots the embedded SQLite database; for PostgreSQL use pg_dump "
                          "(README, Deploying > Backups)")
    return Path(url.database)


def backup(settings, directory: Path) -> Report:
    """Write a consistent snapshot of database and referenced blobs into an empty (or new) directory."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty")
    source = _sqlite_path(settings.database_url)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = directory / DB_FILE
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30) as src, sqlite3.connect(snapshot) as dst:
        src.backup(dst)  # one consistent state, even while others write (the copy restarts if they do)
    dst.close()
    src.close()
    shas, submissions = _referenced(snapshot)
    store, total = open_store(settings), 0
    for sha in sorted(shas):
        total += _copy_checked(store.local_path(sha), directory / BLOBS / sha[:2] / sha, sha)
    manifest = {"created_at": utcnow().isoformat(), "database": DB_FILE, "submissions": submissions,
                "blobs": len(shas), "bytes": total}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Report(directory, len(shas), total, submissions)


def restore(settings, directory: Path) -> Report:
    """Bring a backup back into an empty data dir: the database file, and every blob into the store (checked)."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        raise BackupError(f"{directory} holds no complete backup (no {MANIFEST})")
    target = _sqlite_path(settings.database_url)
    if target.exists():
        raise BackupError(f"{target} already exists: restore only into an empty data dir")
    store = open_store(settings)
    shas, submissions = _referenced(directory / DB_FILE)
    total = 0
    for sha in sorted(shas):
        path = directory / BLOBS / sha[:2] / sha
        if not path.exists():
            raise BackupError(f"the backup lacks blob {sha}")
        if store.exists(sha):
            continue
        if store.put_file(path) != sha:
            raise BackupError(f"blob {sha} in the backup is damaged (its sha256 differs)")
        total += path.stat().st_size
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".restoring")
    shutil.copyfile(directory / DB_FILE, partial)
    os.replace(partial, target)  # the database appears whole or not at all
    return Report(directory, len(shas), total, submissions)


def _referenced(snapshot: Path) -> tuple[set[str], int]:
    """The blobs a database snapshot refers to, and its number of submissions."""
    shas: set[str] = set()
    with sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True) as conn:
        for table, column in BLOB_COLUMNS:
            shas.update(check_sha(v) for (v,) in conn.execute(f"SELECT DISTINCT {column} FROM {table}") if v)
        submissions = conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    conn.close()
    return shas, submissions


def _copy_checked(source: Path, dest: Path, sha: str) -> int:
    """Copy one blob, failing if its bytes do not hash to sha; returns its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    with open(source, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    if h.hexdigest() != sha:
        dest.unlink()
        raise BackupError(f"blob {sha} in the store is damaged (its sha256 differs); not backed up")
    return size
