"""Blob stores: the local directory and the S3-compatible backend (moto over real HTTP), cache, settings."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podium.core.config import DEV_SECRET, Settings
from podium.core.storage import (
    BlobCache,
    CorruptBlob,
    LocalStore,
    S3Store,
    StoreError,
    StoreUnavailable,
    TooLarge,
    open_store,
    parse_s3_url,
)
from tests.support import live
from tests.support.hosts import S3Server

BUCKET = "podium-blobs"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server().start()
    server.make_bucket(BUCKET)
    old = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    yield server
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def _s3_store(s3, root: Path, prefix: str = "t", max_bytes: int | None = None) -> S3Store:
    return S3Store(BUCKET, prefix, BlobCache(root, max_bytes), endpoint_url=s3.url)


def test_local_store_round_trip_and_limit(tmp_path):
    """Content addressing: the key is the sha256; an oversized stream leaves nothing behind."""
    store = LocalStore(tmp_path / "blobs")
    data = os.urandom(3 * (1 << 20) + 5)
    sha, size = store.put_stream(io.BytesIO(data))
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    assert store.local_path(sha).read_bytes() == data and store.exists(sha)
    assert store.put_stream(io.BytesIO(data))[0] == sha  # storing twice is harmless
    with pytest.raises(TooLarge):
        store.put_stream(io.BytesIO(data), max_bytes=1000)
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    for bad in ("../../etc/passwd", "a" * 64 + "\n", "A" * 64):
        with pytest.raises(ValueError):
            store.local_path(bad)
    with pytest.raises(FileNotFoundError):
        store.local_path("0" * 64)


def test_s3_upload_then_every_host_fetches_once(s3, tmp_path):
    """One host uploads; another host fetches the blob once, then serves it from its cache."""
    web = _s3_store(s3, tmp_path / "web-cache")
    data = os.urandom(2 * (1 << 20) + 17)
    sha, _ = web.put_stream(io.BytesIO(data))
    key = web.key(sha)
    assert s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == data

    worker = _s3_store(s3, tmp_path / "worker-cache")
    before = s3.count("GET", BUCKET, key)
    for _ in range(3):
        assert worker.local_path(sha).read_bytes() == data
    assert s3.count("GET", BUCKET, key) - before == 1 and worker.fetches == 1
    # A fresh process on the same host (same cache dir) needs no download at all.
    again = _s3_store(s3, tmp_path / "worker-cache")
    assert again.local_path(sha).read_bytes() == data and again.fetches == 0
    assert s3.count("GET", BUCKET, key) - before == 1


def test_s3_same_content_is_uploaded_once(s3, tmp_path):
    """Re-storing a blob the bucket already has sends no second PUT."""
    store = _s3_store(s3, tmp_path / "c", prefix="dedup")
    data = b"same bytes" * 1000
    sha = store.put_file(_write(tmp_path / "a.bin", data))
    other = _s3_store(s3, tmp_path / "c2", prefix="dedup")
    assert other.put_file(_write(tmp_path / "b.bin", data)) == sha
    assert s3.count("PUT", BUCKET, store.key(sha)) == 1


def test_s3_refuses_a_corrupted_object_and_reports_missing_ones(s3, tmp_path):
    """A bucket object whose bytes do not match its hash is never cached or handed to scoring."""
    store = _s3_store(s3, tmp_path / "c", prefix="bad")
    sha = hashlib.sha256(b"the real bytes").hexdigest()
    s3.client().put_object(Bucket=BUCKET, Key=store.key(sha), Body=b"something else")
    with pytest.raises(CorruptBlob, match="sha256"):
        store.local_path(sha)
    assert not store.cache.exists(sha) and list((tmp_path / "c" / "tmp").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        store.local_path("f" * 64)
    assert not store.exists("f" * 64)


def test_unreachable_store_is_an_infrastructure_error(tmp_path):
    """With the store down, reads and uploads fail with StoreUnavailable and leave no partial files."""
    import boto3
    from botocore.config import Config
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{live.free_port()}", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y",
                          config=Config(connect_timeout=1, retries={"max_attempts": 1}))
    store = S3Store(BUCKET, "down", BlobCache(tmp_path / "c"), client=client)
    with pytest.raises(StoreUnavailable):
        store.local_path("a" * 64)
    with pytest.raises(StoreUnavailable):
        store.put_stream(io.BytesIO(b"model bytes"))
    assert issubclass(StoreUnavailable, StoreError) and issubclass(StoreError, OSError)
    assert list((tmp_path / "c" / "tmp").iterdir()) == []


def test_s3_too_large_upload_leaves_nothing(s3, tmp_path):
    """The size limit is enforced while spooling; nothing reaches the bucket."""
    store = _s3_store(s3, tmp_path / "c", prefix="big")
    data = os.urandom(50_000)
    with pytest.raises(TooLarge):
        store.put_stream(io.BytesIO(data), max_bytes=10_000)
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix="big/")
    assert listed.get("KeyCount", 0) == 0
    assert list((tmp_path / "c" / "tmp").iterdir()) == []


def test_cache_prunes_least_recently_used_beyond_budget(tmp_path):
    """Old blobs beyond the budget go first; recently used ones stay even over budget."""
    cache = BlobCache(tmp_path / "c", max_bytes=2500)
    shas = [cache.put_stream(io.BytesIO(bytes([i]) * 1000))[0] for i in range(4)]
    now = time.time()
    for age, sha in zip((4000, 3000, 2000, 10), shas):  # shas[0] is the least recently used
        os.utime(cache.local_path(sha), (now - age, now - age))
    assert cache.prune(now=now, force=True) == 2
    assert [cache.exists(s) for s in shas] == [False, False, True, True]
    cache.hit(shas[2])  # used just now: kept although the budget is still exceeded by a new blob
    cache.put_stream(io.BytesIO(b"x" * 1000))
    assert cache.prune(now=time.time(), force=True) == 0


def test_open_store_follows_settings(tmp_path):
    """PODIUM_STORAGE_URL picks the backend; the cache lives in the data dir unless told otherwise."""
    base = {"PODIUM_DATA_DIR": str(tmp_path / "var")}
    assert isinstance(open_store(Settings.from_env(base)), LocalStore)
    local = open_store(Settings.from_env(dict(base, PODIUM_STORAGE_URL=f"file://{tmp_path}/shared")))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "shared"
    s = Settings.from_env(dict(base, PODIUM_STORAGE_URL="s3://bucket-name/some/prefix/",
                               PODIUM_S3_ENDPOINT_URL="http://minio:9000", PODIUM_CACHE_DIR=str(tmp_path / "cache")))
    store = open_store(s)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint_url) == ("bucket-name", "some/prefix", "http://minio:9000")
    assert store.cache.root == tmp_path / "cache" / "blobs"
    assert store.key("ab" + "0" * 62) == "some/prefix/ab/ab" + "0" * 62
    assert parse_s3_url("s3://b") == ("b", "")
    with pytest.raises(RuntimeError, match="PODIUM_STORAGE_URL"):
        Settings.from_env(dict(base, PODIUM_STORAGE_URL="/just/a/path"))


def test_web_streams_uploads_into_the_bucket(s3, tmp_path):
    """With S3 storage the web stores the model in the bucket; no blob directory is used."""
    from podium.server.app import create_app
    from tests.support.bundles import write_tiny_bundle
    from tests.support.models import scripted_bytes, small_cnn
    env = {"PODIUM_DATA_DIR": str(tmp_path / "var"), "PODIUM_STORAGE_URL": f"s3://{BUCKET}/web",
           "PODIUM_S3_ENDPOINT_URL": s3.url}
    settings = Settings.from_env(env)
    tokens = live.prepare_database(settings, [write_tiny_bundle(tmp_path / "tiny")], {"alice": "student"})
    app = create_app(settings)
    model = scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3))
    resp = app.test_client().post("/api/v1/challenges/tiny/submissions", data={"model": (io.BytesIO(model), "m.pt")},
                                  headers={"Authorization": f"Bearer {tokens['alice']}"},
                                  content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    key = f"web/{hashlib.sha256(model).hexdigest()[:2]}/{hashlib.sha256(model).hexdigest()}"
    assert s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == model
    assert not settings.blob_dir.exists()


def test_production_refuses_default_or_weak_secret(tmp_path):
    """Settings.check and the web factory refuse PODIUM_ENV=production without a real secret key."""
    from podium.server.app import create_app
    base = {"PODIUM_DATA_DIR": str(tmp_path / "var"), "PODIUM_ENV": "production"}
    for weak in (None, DEV_SECRET, "changeme", "short-secret"):
        env = dict(base) if weak is None else dict(base, PODIUM_SECRET_KEY=weak)
        with pytest.raises(RuntimeError, match="PODIUM_SECRET_KEY"):
            Settings.from_env(env)
    dev = Settings.from_env({"PODIUM_DATA_DIR": str(tmp_path / "var")})
    with pytest.raises(RuntimeError, match="PODIUM_SECRET_KEY"):
        create_app(dev.with_(env="production"))
    good = Settings.from_env(dict(base, PODIUM_SECRET_KEY="x" * 12 + "a-real-random-value"))
    assert good.env == "production"


def test_serve_command_refuses_to_start_in_production_with_default_secret(tmp_path):
    """`podium serve` exits at once with a message instead of serving with a guessable session key."""
    env = dict(os.environ, PODIUM_DATA_DIR=str(tmp_path / "var"), PODIUM_ENV="production")
    env.pop("PODIUM_SECRET_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "podium.cli", "serve", "--port", str(live.free_port())], env=env,
                          cwd=live.REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "PODIUM_SECRET_KEY" in proc.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
