"""An upload over the challenge's limit gets a readable 413, never a connection reset: raw HTTP and curl, on gunicorn."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from tests.support import live
from tests.support.bundles import write_tiny_bundle

BIG = 24 << 20  # 24 MB against a 1 MB limit, as a student's oversized export would be


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    settings = live.settings_for(root / "var")
    small = write_tiny_bundle(root / "small", slug="small", extra_toml="max_model_mb = 1\n")
    stack = live.Stack(settings)
    stack.tokens = live.prepare_database(settings, [small], {"alice": "student"})
    stack.start_web()
    yield stack
    stack.stop()


def _raw_upload(stack, size: int) -> tuple[int, dict]:
    """POST a multipart body of `size` bytes the way a plain client does: all of it, then read the answer."""
    boundary = "podiumboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"big.pt\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + size + len(tail)
    request = (f"POST /api/v1/challenges/small/submissions HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n"
               f"Authorization: Bearer {stack.tokens['alice']}\r\nConnection: close\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n").encode()
    chunk = b"\0" * (1 << 20)
    with socket.create_connection(("127.0.0.1", stack.port), timeout=60) as sock:
        sock.sendall(request + head)
        sent = 0
        while sent < size:  # a reset shows here as ConnectionResetError or BrokenPipeError
            n = min(len(chunk), size - sent)
            sock.sendall(chunk[:n])
            sent += n
        sock.sendall(tail)
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head_text, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    if b"chunked" in head_text.lower():
        size_line, _, rest = body.partition(b"\r\n")
        body = rest[:int(size_line, 16)]
    return status, json.loads(body)


def test_raw_client_reads_the_413_after_sending_everything(small_stack):
    status, body = _raw_upload(small_stack, BIG)
    assert status == 413, body
    assert body["error"]["code"] == "too_large"
    assert body["error"]["message"] == "the model is larger than this challenge's limit of 1 MB"
    status, _ = _raw_upload(small_stack, 2 << 20)  # just over: refused while parsing, drained the same way
    assert status == 413


def test_curl_reads_the_413(small_stack, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    big = tmp_path / "big.pt"
    with open(big, "wb") as f:
        f.truncate(BIG)
    out = subprocess.run([curl, "-sS", "-o", str(tmp_path / "answer.json"), "-w", "%{http_code}",
                          "-H", f"Authorization: Bearer {small_stack.tokens['alice']}", "-F", f"model=@{big}",
                          f"{small_stack.url}/api/v1/challenges/small/submissions"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr  # 55/56: the connection was reset under curl
    assert out.stdout == "413"
    assert json.loads((tmp_path / "answer.json").read_text())["error"]["code"] == "too_large"
