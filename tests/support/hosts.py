"""Helpers for multi-host tests: an S3 endpoint (moto in server mode, counting requests) and process trees."""
from __future__ import annotations

import collections
import threading
from pathlib import Path

from tests.support.live import free_port

ACCESS = {"AWS_ACCESS_KEY_ID": "podium-test", "AWS_SECRET_ACCESS_KEY": "podium-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    """moto's S3 over real HTTP; `requests` counts (method, path) pairs, e.g. ("GET", "/bucket/key")."""

    def __init__(self):
        self.port = free_port()
        self.requests: collections.Counter = collections.Counter()
        self._server = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _counting(self, app):
        def wrapped(environ, start_response):
            with self._lock:
                self.requests[(environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", ""))] += 1
            return app(environ, start_response)
        return wrapped

    def start(self) -> S3Server:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
        app = DomainDispatcherApplication(create_backend_app)
        class Quiet(MotoRequestHandler):
            def log_request(self, *args, **kwargs):  # one line per request would bury the test output
                pass

        self._server = make_server("127.0.0.1", self.port, self._counting(app), threaded=True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto-s3")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._server = None

    def client(self):
        """A boto3 client for this endpoint with the test credentials."""
        import boto3
        return boto3.client("s3", endpoint_url=self.url, region_name=ACCESS["AWS_DEFAULT_REGION"],
                            aws_access_key_id=ACCESS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=ACCESS["AWS_SECRET_ACCESS_KEY"])

    def make_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def env(self) -> dict:
        """Environment for a podium process using this endpoint (credentials as AWS_* variables, never settings)."""
        return dict(ACCESS, PODIUM_S3_ENDPOINT_URL=self.url)

    def count(self, method: str, bucket: str, key: str) -> int:
        """How many requests with this method named this object."""
        return self.requests[(method, f"/{bucket}/{key}")]


def descendants(pid: int) -> set[int]:
    """pid and every process below it (read from /proc), to tell which worker claimed a row."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in found]
        found.update(kids)
        frontier.extend(kids)
    return found


def claimed_by(worker_name: str | None, tree: set[int]) -> bool:
    """True when a Submission.worker value ("host:pid") names a process in this tree."""
    return bool(worker_name) and int(worker_name.rsplit(":", 1)[1]) in tree


def environ_of(pid: int) -> dict[str, str]:
    """The environment a process started with (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def cmdline_of(pid: int) -> str:
    """A process's command line, space-separated (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
