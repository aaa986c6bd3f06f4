"""Content-addressed blob storage (models, test sets, starter kits), keyed by sha256: a local directory or S3."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(Exception):
    """The stream exceeded the size limit while being stored."""


class StoreError(OSError):
    """The blob store failed, which is never the student's fault (callers retry or answer 503)."""


class StoreUnavailable(StoreError):
    """The object store could not be reached or refused the request."""


class StorageFull(StoreError):
    """No space (or quota) left where blobs are written; what was being written has been removed."""


FULL = (errno.ENOSPC, errno.EDQUOT)
FULL_MESSAGE = "the server's storage is full"


class CorruptBlob(StoreError):
    """The bytes the store returned do not match the blob's sha256."""


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
        try:
            return self._file.write(data)
        except OSError as exc:
            raise self._failed(exc) from exc

    def seek(self, *args):  # Werkzeug rewinds the file it was given; the hash already covers it.
        return self._file.seek(*args)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, *args) -> bytes:
        return b""

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            raise self._failed(exc) from exc

    def close(self) -> None:
        """Close the temporary file (it stays until committed or discarded)."""
        if not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> OSError:
        """A write failed: on a full disk nothing half-written may stay, so the temporary file goes."""
        if exc.errno not in FULL:
            return exc
        try:
            self._file.close()
        except OSError:
            pass
        self.path.unlink(missing_ok=True)
        log.error("blob store full at %s: %s", self.path.parent, exc.strerror)
        return StorageFull(f"{FULL_MESSAGE} ({exc.strerror})")

    @property
    def sha256(self) -> str:
        """Hex digest of everything written so far."""
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Close and delete the temporary file."""
        self.close()
        self.path.unlink(missing_ok=True)


class BlobStore(Protocol):
    """What the web and the workers need from a store; LocalStore and S3Store both provide it."""

    def writer(self, max_bytes: int | None = None) -> HashingWriter: ...
    def commit(self, writer: HashingWriter) -> str: ...
    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]: ...
    def put_file(self, path: Path) -> str: ...
    def exists(self, sha: str) -> bool: ...
    def local_path(self, sha: str) -> Path: ...
    def open(self, sha: str) -> BinaryIO: ...


def check_sha(sha: str) -> str:
    """The sha256 itself, or ValueError when it is not 64 lowercase hex digits (keys never come from users raw)."""
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ValueError(f"not a sha256: {sha!r}")
    return sha


class _StoreBase:
    """The operations every store derives from writer(), commit() and local_path()."""

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

    def open(self, sha: str) -> BinaryIO:
        """Open a blob for reading."""
        return open(self.local_path(sha), "rb")


class LocalStore(_StoreBase):
    """Blobs in a directory: blobs/ab/abcdef...; the embedded default and a shared-volume option."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, sha: str) -> Path:
        check_sha(sha)
        return self.root / sha[:2] / sha

    def writer(self, max_bytes: int | None = None) -> HashingWriter:
        """A temporary writer inside the store; commit() it to keep the blob."""
        return HashingWriter(self.root / "tmp", max_bytes)

    def commit(self, writer: HashingWriter) -> str:
        """Move a finished writer's file into place under its hash; returns the sha256."""
        writer.close()
        sha = writer.sha256
        dest = self._path(sha)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            writer.discard()
            if exc.errno in FULL:
                raise StorageFull(f"{FULL_MESSAGE} ({exc.strerror})") from exc
            raise
        if dest.exists():
            writer.path.unlink(missing_ok=True)
        else:
            os.replace(writer.path, dest)
        return sha

    def exists(self, sha: str) -> bool:
        """True when the blob is stored."""
        return self._path(sha).exists()

    def local_path(self, sha: str) -> Path:
        """A local file path holding the blob (here: the blob itself)."""
        path = self._path(sha)
        if not path.exists():
            raise FileNotFoundError(f"blob {sha} is not in the store")
        return path


class BlobCache(LocalStore):
    """A host's copy of blobs fetched from a remote store, trimmed by last use to a size budget."""

    PRUNE_EVERY_S = 60.0
    KEEP_RECENT_S = 600.0   # a path handed out this recently may still be about to be opened

    def __init__(self, root: Path, max_bytes: int | None = None):
        super().__init__(root)
        self.max_bytes = max_bytes
        self._last_prune = 0.0

    def hit(self, sha: str) -> Path | None:
        """The cached file, marked as just used, or None."""
        path = self._path(sha)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def prune(self, now: float | None = None, force: bool = False) -> int:
        """Drop least recently used blobs (and stale temp files) beyond the budget; returns how many went."""
        now = time.time() if now is None else now
        if not force and now - self._last_prune < self.PRUNE_EVERY_S:
            return 0
        self._last_prune = now
        removed = 0
        for tmp in (self.root / "tmp").glob("*.part"):
            if now - tmp.stat().st_mtime > 86400:
                tmp.unlink(missing_ok=True)
        if self.max_bytes is None:
            return removed
        entries = []
        for p in self.root.glob("??/*"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for mtime, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if now - mtime < self.KEEP_RECENT_S:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


class S3Store(_StoreBase):
    """Blobs in an S3-compatible bucket under prefix/ab/sha; each host fetches a blob once and keeps it by hash."""

    def __init__(self, bucket: str, prefix: str, cache: BlobCache, *, endpoint_url: str | None = None,
                 region: str | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache = cache
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client
        self._lock = threading.Lock()
        self.fetches = 0        # blobs downloaded by this process (tests and logs read it)

    def __repr__(self) -> str:
        return f"S3Store('s3://{self.bucket}/{self.prefix}', endpoint={self.endpoint_url!r})"

    @property
    def root(self) -> Path:
        """The local cache root (uploads are spooled under it before they go to the bucket)."""
        return self.cache.root

    @property
    def client(self):
        """The boto3 S3 client, created on first use (after any fork), with timeouts and retries."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config
                self._client = boto3.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                    config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"},
                                  s3={"addressing_style": "path"} if self.endpoint_url else None))
            return self._client

    def key(self, sha: str) -> str:
        """The object key of a blob."""
        check_sha(sha)
        return f"{self.prefix}/{sha[:2]}/{sha}" if self.prefix else f"{sha[:2]}/{sha}"

    def writer(self, max_bytes: int | None = None) -> HashingWriter:
        """A temporary local spool file; commit() uploads it under its hash."""
        return self.cache.writer(max_bytes)

    def commit(self, writer: HashingWriter) -> str:
        """Upload a finished writer's file (unless the bucket has it already) and keep it in the local cache."""
        writer.close()
        sha = writer.sha256
        try:
            with _s3_errors(f"blob {sha}"):
                if not self._remote_exists(sha):
                    self.client.upload_file(str(writer.path), self.bucket, self.key(sha))
        except BaseException:
            writer.discard()
            raise
        self.cache.commit(writer)
        self.cache.prune()
        return sha

    def _remote_exists(self, sha: str) -> bool:
        try:
            with _s3_errors(f"blob {sha}"):
                self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
            return True
        except FileNotFoundError:
            return False

    def exists(self, sha: str) -> bool:
        """True when the blob is in the bucket (or already in this host's cache)."""
        return self.cache.exists(sha) or self._remote_exists(sha)

    def local_path(self, sha: str) -> Path:
        """A local file holding the blob: from the cache, or downloaded once, checked against its hash."""
        path = self.cache.hit(sha)
        if path is not None:
            return path
        return self._fetch(sha)

    def _fetch(self, sha: str) -> Path:
        t0 = time.perf_counter()
        writer = self.cache.writer()
        try:
            with _s3_errors(f"blob {sha} in s3://{self.bucket}/{self.prefix}"):
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"]
                with body:
                    for chunk in body.iter_chunks(CHUNK):
                        writer.write(chunk)
            writer.close()
            if writer.sha256 != sha:  # a truncated or altered object must never be scored
                raise CorruptBlob(f"blob {sha} from s3://{self.bucket} has sha256 {writer.sha256}; not cached")
        except BaseException:
            writer.discard()
            raise
        self.cache.commit(writer)
        self.fetches += 1
        log.info("fetched blob %s (%d bytes) from s3://%s/%s in %.2f s", sha, writer.size, self.bucket, self.prefix,
                 time.perf_counter() - t0)
        self.cache.prune()
        return self.cache.local_path(sha)


_MISSING = ("404", "NoSuchKey", "NotFound")


@contextmanager
def _s3_errors(what: str):
    """Turn boto3's errors into FileNotFoundError (no such object) or StoreUnavailable (anything else)."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in _MISSING:
            raise FileNotFoundError(f"{what} is not in the store") from None
        raise StoreUnavailable(f"the object store refused {what}: {code}") from exc
    except (BotoCoreError, S3UploadFailedError) as exc:
        raise StoreUnavailable(f"the object store is unreachable ({what}): {exc}") from exc


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split s3://bucket/some/prefix into ("bucket", "some/prefix")."""
    if not url.startswith("s3://") or len(url) <= len("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, prefix.strip("/")


def open_store(settings) -> BlobStore:
    """The store the settings name: S3 for s3:// URLs, otherwise a local directory (the embedded default)."""
    if settings.storage_url.startswith("s3://"):
        bucket, prefix = parse_s3_url(settings.storage_url)
        cache = BlobCache(settings.cache_dir / "blobs", int(settings.cache_max_mb * (1 << 20)))
        return S3Store(bucket, prefix, cache, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    return LocalStore(settings.blob_dir)
