"""The CLI's client through a reverse proxy that answers 503 (with Retry-After) and 502 before the server does.

The proxy is a stand-in for what lies outside Podium (nginx, a load balancer during a deploy); the client is real.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from podium.cli.client import ClientError, PodiumClient


class FlakyProxy(BaseHTTPRequestHandler):
    """Answers the scripted statuses in turn, then 202 with a submission; records every POST's key and time."""

    script: list[tuple[int, dict]] = []
    seen: list[tuple[float, str | None]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append((time.monotonic(), self.headers.get("Idempotency-Key")))
        status, headers = type(self).script.pop(0) if type(self).script else (202, {})
        body = json.dumps({"id": 41, "status": "queued"} if status == 202 else {"detail": "upstream"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    FlakyProxy.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_upload_waits_out_503_with_retry_after_and_502_under_one_key(proxy, tmp_path):
    FlakyProxy.script = [(503, {"Retry-After": "2"}), (502, {}), (504, {})]
    model = tmp_path / "model.pt2"
    model.write_bytes(b"not parsed by the proxy")
    out = PodiumClient(proxy, "pod_token").submit(model, "digits")
    assert out == {"id": 41, "status": "queued"}
    times, keys = zip(*FlakyProxy.seen)
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0]  # one upload, retried: the server keeps one row
    assert times[1] - times[0] >= 1.9  # Retry-After honoured, not the 0.5 s backoff


def test_a_proxy_error_that_never_ends_is_reported_as_transient(proxy, tmp_path, monkeypatch):
    monkeypatch.setattr("podium.cli.client.UPLOAD_PATIENCE_S", 0)  # give up after the session's own retries
    FlakyProxy.script = [(503, {})] * 50
    model = tmp_path / "model.pt2"
    model.write_bytes(b"x")
    with pytest.raises(ClientError) as caught:
        PodiumClient(proxy, "pod_token", retries=2).submit(model, "digits")
    assert caught.value.transient and "HTTP 503" in str(caught.value)
    assert len(FlakyProxy.seen) == 3  # the first try and two retries
