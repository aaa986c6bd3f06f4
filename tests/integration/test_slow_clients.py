"""Slow clients cannot take `podium serve` down: heads and small bodies are read by the event loop, late ones get 408.

8 and then 32 anonymous sockets trickle a request head (or a login body) one line at a time, more sockets than
the server has threads (2 processes x 4), while /healthz and a signed-in page must still answer.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.classroom import CSRF_RE

pytestmark = pytest.mark.slow
HEAD_TIMEOUT_S = 6  # the stack's PODIUM_HEAD_TIMEOUT_S: long enough to probe while every slow socket is open
PROBE_TIMEOUT_S = 5  # a probe queued behind the slow sockets would wait until they closed


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("slow-clients")
    settings = live.settings_for(root / "var")
    stack = live.Stack(settings)
    stack.tokens = live.prepare_database(settings, [write_tiny_bundle(root / "tiny")], {"alice": "student"})
    stack.start_web(PODIUM_HEAD_TIMEOUT_S=HEAD_TIMEOUT_S)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def signed_in(stack) -> requests.Session:
    browser = requests.Session()
    token = CSRF_RE.search(browser.get(f"{stack.url}/login", timeout=30).text).group(1)
    resp = browser.post(f"{stack.url}/login", data={"username": "alice", "password": live.password_for("alice"),
                                                   "csrf_token": token}, allow_redirects=False, timeout=30)
    assert resp.status_code == 302, resp.text
    return browser


class Trickler:
    """Sockets that each send the first bytes of a request, then one more line every `every_s` seconds."""

    def __init__(self, port: int, n: int, first: bytes, line: bytes, every_s: float = 0.5):
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
        self.line, self.every_s = line, every_s
        self.answers: list[bytes | None] = [None] * n
        for s in self.socks:
            s.sendall(first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        open_ = set(range(len(self.socks)))
        deadline = time.monotonic() + 4 * HEAD_TIMEOUT_S  # bounded: the test ends whatever the server does
        while open_ and not self._stop.is_set() and time.monotonic() < deadline:
            for i in list(open_):
                try:
                    self.socks[i].sendall(self.line)
                except OSError:  # the server closed it: read what it said
                    open_.discard(i)
                    self.answers[i] = self._read(self.socks[i])
            self._stop.wait(self.every_s)
        for i in open_:  # still open when the trickle stopped: the server never answered
            self.socks[i].settimeout(1)
            self.answers[i] = self._read(self.socks[i])

    @staticmethod
    def _read(sock: socket.socket) -> bytes:
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except OSError:
            pass
        return data

    def wait(self) -> list[bytes | None]:
        self._thread.join(8 * HEAD_TIMEOUT_S)
        for s in self.socks:
            s.close()
        return self.answers


def _probe(stack, signed_in) -> None:
    health = requests.get(f"{stack.url}/healthz", timeout=PROBE_TIMEOUT_S)
    assert health.status_code == 200
    account = signed_in.get(f"{stack.url}/account", timeout=PROBE_TIMEOUT_S, allow_redirects=False)
    assert account.status_code == 200 and "alice" in account.text


@pytest.mark.parametrize("n", [8, 32])
def test_slow_request_heads_leave_the_site_up_and_are_answered_408(stack, signed_in, n):
    host = f"127.0.0.1:{stack.port}"
    slow = Trickler(stack.port, n, f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode(), b"X-Slow: 1\r\n")
    time.sleep(1)  # every slow socket has sent its request line and a header, and waits
    _probe(stack, signed_in)
    answers = slow.wait()
    assert all(a is not None and a.startswith(b"HTTP/1.1 408") for a in answers), answers


@pytest.mark.parametrize("n", [8, 32])
def test_slow_login_bodies_leave_the_site_up(stack, signed_in, n):
    body = b"username=alice&password=" + b"x" * 200
    head = (f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    slow = Trickler(stack.port, n, head + body[:10], b"x")
    time.sleep(1)
    _probe(stack, signed_in)
    answers = slow.wait()
    assert all(a is not None and a.startswith(b"HTTP/1.1 408") for a in answers), answers


def test_a_slow_head_that_completes_in_time_is_served(stack):
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    for part in (b"GET /healthz HTTP/1.1\r\n", f"Host: 127.0.0.1:{stack.port}\r\n".encode(), b"Connection: close\r\n",
                 b"\r\n"):
        sock.sendall(part)
        time.sleep(0.3)
    answer = Trickler._read(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200") and b'"status"' in answer


def test_a_huge_anonymous_login_body_is_refused_before_it_is_sent(stack):
    """150 MB announced, 1 MB sent: the 413 comes back at once, nothing of the body is spooled."""
    boundary = "b0undary"
    head = (f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {150 << 20}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=PROBE_TIMEOUT_S)
    sock.sendall(head + f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n".encode()
                 + b"x" * (1 << 20))
    answer = sock.recv(4096)  # a server that spooled the body would still be waiting for 149 MB
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    tmp = list((stack.settings.data_dir).rglob("*.tmp"))
    assert not [p for p in tmp if p.stat().st_size > (1 << 20)]


def _answer_to_a_huge_upload(stack, path: str, headers: str, announced: int = 150 << 20) -> bytes:
    """Announce a large multipart upload (150 MB), send 1 MB of it, and read what the server answers meanwhile."""
    boundary = "upl0ad"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n{headers}Content-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {announced}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=PROBE_TIMEOUT_S)
    sock.sendall(head + f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m.pt\"\r\n\r\n"
                 .encode() + b"x" * (1 << 20))
    answer = sock.recv(4096)  # a server that read the body first would still be waiting for the rest
    sock.close()
    return answer


def test_an_anonymous_upload_is_refused_before_its_body(stack):
    """Authentication comes before the body, for the API and the web form alike (a signed-in sender's refused
    body is drained so that the browser sees the answer, never stored: podium.server.uploads.drain_after)."""
    assert _answer_to_a_huge_upload(stack, "/api/v1/challenges/tiny/submissions", "").startswith(b"HTTP/1.1 401")
    answer = _answer_to_a_huge_upload(stack, "/challenges/tiny/submit", "")
    assert answer.startswith(b"HTTP/1.1 302") and b"/login" in answer  # the form: sign in first



def test_a_signed_in_upload_over_its_limit_is_refused_before_its_body_is_kept(stack):
    """The limits come before the body: a student with three models pending gets 429, and while the upload is
    sent nothing of it is spooled or stored (it is drained, so that the sender can read the answer)."""
    from podium.core import states
    from podium.core.db import Database
    from podium.core.models import Challenge, Submission, User

    db = Database(stack.settings.database_url)
    try:
        with db.session() as s:
            alice = s.query(User).filter_by(username="alice").one()
            tiny = s.query(Challenge).filter_by(slug="tiny").one()
            for _ in range(tiny.max_queued):  # no worker in this stack: they stay pending
                s.add(Submission(challenge_id=tiny.id, user_id=alice.id, status=states.QUEUED,
                                 model_sha256="0" * 64, model_size=10))
            s.commit()
    finally:
        db.dispose()

    def kept() -> list:
        return [p for p in stack.settings.data_dir.rglob("*") if p.is_file() and p.stat().st_size > (1 << 20)]
    before = kept()
    boundary, size = "upl0ad", 12 << 20
    part = f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m.pt\"\r\n\r\n".encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/v1/challenges/tiny/submissions HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n"
            f"Authorization: Bearer {stack.tokens['alice']}\r\nContent-Type: multipart/form-data; boundary={boundary}"
            f"\r\nContent-Length: {len(part) + size + len(tail)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(head + part + b"x" * (size // 2))
        time.sleep(1.0)
        assert kept() == before  # half sent: not spooled to disk, not stored
        sock.sendall(b"x" * (size - size // 2) + tail)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 429"), answer[:300]
    assert kept() == before
