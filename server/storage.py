"""Content-addressed blob storage (models, test sets, starter kits), keyed by sha256."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(Exception):
    """The stream exceeded the size limit while being stored."""


class HashingWriter:
    """A write-only file that hashes and counts what passes through and refuses more than max_bytes."""

    def __init__(self, directory: Path, max_bytes: int | None):
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def write(self, data: bytes) -> int:
        """Append data, failing with TooLarge past the limit."""
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise TooLarge(self.size)
        self._hash.update(data)
        return self._file.write(data)

    def seek(self, *args):  # Werkzeug rewinds the file it was given; the hash already covers it.
        return self._file.seek(*args)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, *args) -> bytes:
        return b""

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Close the temporary file (it stays until committed or discarded)."""
        if not self._file.closed:
            self._file.close()

    @property
    def sha256(self) -> str:
        """Hex digest of everything written so far."""
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Close and delete the temporary file."""
        self.close()
        self.path.unlink(missing_ok=True)


class LocalStore:
    """Blobs in a directory: blobs/ab/abcdef...; the embedded default and a shared-volume option."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, sha: str) -> Path:
        if not _SHA.match(sha):
            raise ValueError(f"not a sha256: {sha!r}")
        return self.root / sha[:2] / sha

    def writer(self, max_bytes: int | None = None) -> HashingWriter:
        """A temporary writer inside the store; commit() it to keep the blob."""
        return HashingWriter(self.root / "tmp", max_bytes)

    def commit(self, writer: HashingWriter) -> str:
        """Move a finished writer's file into place under its hash; returns the sha256."""
        writer.close()
        sha = writer.sha256
        dest = self._path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            writer.path.unlink(missing_ok=True)
        else:
            os.replace(writer.path, dest)
        return sha

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Copy a stream into the store in chunks; returns (sha256, size)."""
        writer = self.writer(max_bytes)
        try:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
        except BaseException:
            writer.discard()
            raise
        return self.commit(writer), writer.size

    def put_file(self, path: Path) -> str:
        """Store a file by content; returns its sha256."""
        with open(path, "rb") as f:
            return self.put_stream(f)[0]

    def exists(self, sha: str) -> bool:
        """True when the blob is stored."""
        return self._path(sha).exists()

    def local_path(self, sha: str) -> Path:
        """A local file path holding the blob (here: the blob itself)."""
        path = self._path(sha)
        if not path.exists():
            raise FileNotFoundError(f"blob {sha} is not in the store")
        return path

    def open(self, sha: str) -> BinaryIO:
        """Open a blob for reading."""
        return open(self.local_path(sha), "rb")

    def copy_to(self, sha: str, dest: Path) -> None:
        """Copy a blob to a file."""
        shutil.copyfile(self.local_path(sha), dest)


def open_store(settings) -> LocalStore:
    """The store the settings name (local directory by default)."""
    return LocalStore(settings.blob_dir)
