"""Settings read from the environment, in one place for the web, the worker and the CLI."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# The account whose submissions are the starter kits' baselines (shown, never ranked as a student).
BASELINE_USER = "baseline"

DEV_SECRET = "podium-development-secret"
# Values people paste from examples; none of them is a secret.
WEAK_SECRETS = frozenset({"", DEV_SECRET, "changeme", "change-me", "changethis", "secret", "podium"})
MIN_SECRET_CHARS = 16


def _optional_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Settings:
    """Server-side configuration; build it with Settings.from_env() or pass your own in tests."""

    data_dir: Path
    database_url: str
    broker_url: str
    secret_key: str = DEV_SECRET
    env: str = "development"
    # The largest upload any challenge may allow; per-challenge limits are checked on top.
    max_upload_mb: float = 200.0
    broker_polling_interval: float = 0.02
    # Redis re-delivers an unacked message after this many seconds; it must exceed the longest scoring time.
    visibility_timeout_s: int = 3600
    # Where blobs live: "" (the data dir), file:///path, or s3://bucket/prefix (S3, MinIO, Ceph...).
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Blobs fetched from the object store are kept here by hash (one per host, never shared).
    cache_dir_override: Path | None = None
    cache_max_mb: float = 20_000.0
    # A worker pinned to one GPU: its index (CUDA_VISIBLE_DEVICES) and the memory cap of each scoring child.
    gpu: str | None = None
    gpu_memory_mb: int | None = None
    worker_queues: str | None = None
    # A worker's pool process (and its sandbox) is replaced after this many tasks; each replacement costs about
    # a second of warm-up, so a low value shows in a burst's throughput.
    worker_max_tasks: int = 1000
    # A worker whose sandbox lacks a confinement layer (no Landlock under gVisor, say) refuses to score unless the
    # operator accepts the risk with PODIUM_SANDBOX_ALLOW_INCOMPLETE=1.
    sandbox_allow_incomplete: bool = False
    # Podium's public URL (the LTI redirect URI and the URLs shown for the LMS); empty: the request's host.
    public_url: str = ""
    # The web server's limits on slow clients: a request head (and a body up to small_body_kb) must arrive within
    # head_timeout_s; any later read or write may wait at most body_idle_timeout_s.
    head_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0
    # The largest body of a request that is not an authenticated upload (forms, logins, JSON calls).
    small_body_kb: int = 64
    # How many reverse proxies in front of the web set X-Forwarded-For/-Proto (0: trust no such header).
    trusted_proxies: int = 0
    # /metrics answers a request with "Authorization: Bearer <this>"; empty: only clients on this host (loopback).
    metrics_token: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        """Read PODIUM_* variables; defaults give the embedded SQLite set-up in ./var."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("PODIUM_DATA_DIR", "./var")).resolve()
        cache_dir = env.get("PODIUM_CACHE_DIR")
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("PODIUM_DATABASE_URL") or f"sqlite:///{data_dir / 'podium.sqlite'}",
            broker_url=env.get("PODIUM_BROKER_URL") or f"sqla+sqlite:///{data_dir / 'broker.sqlite'}",
            secret_key=env.get("PODIUM_SECRET_KEY", DEV_SECRET),
            env=env.get("PODIUM_ENV", "development"),
            max_upload_mb=float(env.get("PODIUM_MAX_UPLOAD_MB", "200")),
            broker_polling_interval=float(env.get("PODIUM_BROKER_POLL_S", "0.02")),
            visibility_timeout_s=int(env.get("PODIUM_VISIBILITY_TIMEOUT_S", "3600")),
            storage_url=env.get("PODIUM_STORAGE_URL", ""),
            s3_endpoint_url=env.get("PODIUM_S3_ENDPOINT_URL") or None,
            s3_region=env.get("PODIUM_S3_REGION") or None,
            cache_dir_override=Path(cache_dir).resolve() if cache_dir else None,
            cache_max_mb=float(env.get("PODIUM_CACHE_MAX_MB", "20000")),
            gpu=env.get("PODIUM_GPU") or None,
            gpu_memory_mb=_optional_int(env.get("PODIUM_GPU_MEMORY_MB")),
            worker_queues=env.get("PODIUM_QUEUES") or None,
            worker_max_tasks=int(env.get("PODIUM_WORKER_MAX_TASKS", "1000")),
            sandbox_allow_incomplete=env.get("PODIUM_SANDBOX_ALLOW_INCOMPLETE", "") in ("1", "true", "yes"),
            public_url=env.get("PODIUM_PUBLIC_URL", ""),
            head_timeout_s=float(env.get("PODIUM_HEAD_TIMEOUT_S", "10")),
            body_idle_timeout_s=float(env.get("PODIUM_BODY_TIMEOUT_S", "30")),
            small_body_kb=int(env.get("PODIUM_SMALL_BODY_KB", "64")),
            trusted_proxies=int(env.get("PODIUM_TRUSTED_PROXIES", "0")),
            metrics_token=env.get("PODIUM_METRICS_TOKEN", ""),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Fail fast on settings that are unsafe for production."""
        if self.env == "production":
            if self.secret_key in WEAK_SECRETS or len(self.secret_key) < MIN_SECRET_CHARS:
                raise RuntimeError("PODIUM_SECRET_KEY must be set to a random value of at least "
                                   f"{MIN_SECRET_CHARS} characters when PODIUM_ENV=production "
                                   "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if self.storage_url and not self.storage_url.startswith(("s3://", "file://")):
            raise RuntimeError(f"PODIUM_STORAGE_URL must start with s3:// or file:// (got {self.storage_url!r})")

    def with_(self, **changes) -> Settings:
        """A copy with some fields changed (for tests and the demo)."""
        return replace(self, **changes)

    @property
    def blob_dir(self) -> Path:
        """Where content-addressed model files and test sets live (local storage)."""
        if self.storage_url.startswith("file://"):
            return Path(self.storage_url[len("file://"):])
        return self.data_dir / "blobs"

    @property
    def cache_dir(self) -> Path:
        """This host's cache of blobs fetched from a remote store (PODIUM_CACHE_DIR, default data dir/cache)."""
        return self.cache_dir_override or self.data_dir / "cache"

    def scoring_memory_mb(self, challenge_limit_mb: int) -> int:
        """The memory cap of one scoring child: the challenge's limit, lowered to this worker's GPU cap if set."""
        if self.gpu_memory_mb is None:
            return int(challenge_limit_mb)
        return int(min(challenge_limit_mb, self.gpu_memory_mb))
