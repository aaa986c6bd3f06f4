"""Limits hold under real concurrent requests to a real server (gunicorn, several processes), on SQLite and Postgres.

Slow-body uploads pass the early, quick check all at once, then finish their bodies together: only the
check made under the competitor's lock, in the transaction that inserts the row, decides.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
import requests

from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.live import require_postgres_and_redis
from tests.support.models import scripted_bytes, small_cnn

pytestmark = pytest.mark.slow
SLOW_WAIT_S = 1.5  # every request has sent its headers and 1 kB, and waits in the view for the rest


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request, tmp_path_factory):
    """The web server only (nothing is graded, so every accepted upload stays pending)."""
    root = tmp_path_factory.mktemp(f"races-{request.param}")
    bundles = [_bundle(root, "limit", daily_limit=2), _bundle(root, "cap"),  # the pending cap is 3
               _bundle(root, "squad", daily_limit=1, team_size=3), _bundle(root, "seats", team_size=3)]
    users = {f"s{i}": "student" for i in range(12)}

    def start(database_url=None):
        settings = live.settings_for(root / "var", database_url)
        tokens = live.prepare_database(settings, bundles, users)
        s = live.Stack(settings)
        s.tokens = tokens
        s.start_web()
        return s

    if request.param == "postgres":
        require_postgres_and_redis()
        with live.fresh_postgres_db() as url:
            s = start(url)
            yield s
            s.stop()
    else:
        s = start()
        yield s
        s.stop()


def _bundle(root, slug: str, daily_limit: int = 1000, team_size: int = 1):
    folder = write_tiny_bundle(root / slug, slug=slug, extra_toml=f"team_size = {team_size}\n")
    toml = folder / "challenge.toml"
    toml.write_text(toml.read_text().replace("daily_limit = 1000", f"daily_limit = {daily_limit}"))
    return folder


def _multipart(payload: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"model.pt\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def _status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[-1]


def slow_posts(stack, requests_: list[tuple[str, str, str, bytes]]) -> list[tuple[int, dict]]:
    """Send each (token, path, content type, body) as headers plus 1 kB, wait, then all the rests at once."""
    port = stack.port
    socks = []
    for token, path, ctype, body in requests_:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        cut = min(1024, len(body) - 1)
        sock.sendall(head + body[:cut])
        socks.append((sock, body[cut:]))
    time.sleep(SLOW_WAIT_S)
    results: list = [None] * len(socks)
    go = threading.Barrier(len(socks))

    def finish(i: int) -> None:
        sock, rest = socks[i]
        go.wait()
        sock.sendall(rest)
        status, raw = _status(sock)
        sock.close()
        results[i] = (status, json.loads(raw or b"{}"))

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _uploads(stack, slug: str, users: list[str]) -> list[tuple[int, dict]]:
    ctype, body = _multipart(scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3)))
    return slow_posts(stack, [(stack.tokens[u], f"/api/v1/challenges/{slug}/submissions", ctype, body) for u in users])


def _codes(results) -> list[int]:
    return sorted(status for status, _ in results)


def test_eight_parallel_slow_uploads_get_exactly_the_daily_limit(stack):
    results = _uploads(stack, "limit", ["s0"] * 8)
    assert _codes(results) == [202] * 2 + [429] * 6, results
    assert {b["error"]["code"] for s, b in results if s == 429} == {"daily_limit"}
    listed = live.Api(stack.url, stack.tokens["s0"]).get("/challenges/limit/submissions").json()
    assert len(listed) == 2


def test_eight_parallel_slow_uploads_respect_the_pending_cap(stack):
    results = _uploads(stack, "cap", ["s1"] * 8)
    assert _codes(results) == [202] * 3 + [429] * 5, results
    assert {b["error"]["code"] for s, b in results if s == 429} == {"too_many_pending"}


def _team(stack, slug: str, name: str, members: list[str]) -> dict:
    api = f"{stack.url}/api/v1/challenges/{slug}"
    made = requests.post(f"{api}/teams", json={"name": name}, timeout=30,
                         headers={"Authorization": f"Bearer {stack.tokens[members[0]]}"})
    assert made.status_code == 201, made.text
    for m in members[1:]:
        joined = requests.post(f"{api}/teams/join", json={"code": made.json()["join_code"]}, timeout=30,
                               headers={"Authorization": f"Bearer {stack.tokens[m]}"})
        assert joined.status_code == 200, joined.text
    return made.json()


def test_three_members_at_the_same_instant_against_a_limit_of_one(stack):
    _team(stack, "squad", "Racers", ["s2", "s3", "s4"])
    results = _uploads(stack, "squad", ["s2", "s3", "s4"])
    assert _codes(results) == [202, 429, 429], results
    listed = live.Api(stack.url, stack.tokens["s4"]).get("/challenges/squad/submissions").json()
    assert len(listed) == 1 and listed[0]["team"] == "Racers"


def test_two_students_race_for_the_last_seat(stack):
    """Several rounds: a team with one seat left, two outsiders join at the same instant; one wins."""
    rounds = [("Seat A", ["s5", "s6"], ["s7", "s8"]), ("Seat B", ["s9", "s10"], ["s11", "s0"])]
    for name, members, racers in rounds:
        team = _team(stack, "seats", name, members)
        body = json.dumps({"code": team["join_code"]}).encode()
        body = body + b" " * 1100  # room for the 1 kB head start; JSON ignores trailing spaces
        results = slow_posts(stack, [(stack.tokens[r], "/api/v1/challenges/seats/teams/join", "application/json", body)
                                     for r in racers])
        assert _codes(results) == [200, 409], results
        assert [b["error"]["code"] for s, b in results if s == 409] == ["team_full"]
        mine = live.Api(stack.url, stack.tokens[members[0]]).get("/challenges/seats/team").json()
        assert len(mine["members"]) == 3, mine
