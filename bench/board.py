"""(e) The leaderboard at scale: 3,000 students with 10, 100 and 1,000 scored submissions each (30,000, 300,000 and
3,000,000) COPYed into Postgres, then the JSON and HTML pages with 1 viewer and with 50 viewers refreshing.

One database grows through the sizes (each size adds rounds of one submission per student), so the three
measurements share the server, the students and the board's competitors; only the history grows.
"""
from __future__ import annotations

import io
import random
import re
import statistics
import threading
import time
from datetime import timedelta

import requests
from sqlalchemy import select, text

from podium.core import board, states
from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission, User, utcnow
from podium.server import instructor

SIZES = (30_000, 300_000, 3_000_000)
STUDENTS = 3_000
VIEWERS = 50
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

_SUB_COLS = ("id", "challenge_id", "user_id", "status", "attempt", "infra_retries", "model_sha256", "model_size",
             "filename", "is_final", "disqualified_reason", "created_at", "enqueued_at", "started_at", "finished_at",
             "format", "params", "flops_per_input", "inference_ms")
_SCORE_COLS = ("id", "submission_id", "challenge_id", "user_id", "metric", "public_score", "private_score", "n_public",
               "n_private", "device", "created_at")


def _copy(raw, table: str, cols: tuple, lines) -> None:
    """COPY text-format lines into a table, 8 MB at a time."""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for line in lines:
            buf.write(line)
            if buf.tell() > 8 << 20:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def _secondary_indexes(conn, tables: tuple) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of these tables that no constraint owns (those can be rebuilt after a load)."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:t) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)"), {"t": list(tables)})]


def seed_students(database_url: str, slug: str, students: int = STUDENTS) -> None:
    """The class: students (every third with an alias, one disqualified)."""
    db = Database(database_url)
    try:
        with db.session() as s:
            first = (s.scalar(select(User.id).order_by(User.id.desc()).limit(1)) or 0) + 1
            s.add_all(User(id=first + i, username=f"student{i:04d}", role="student",
                           alias=f"fox{i:04d}" if i % 3 == 0 else None, disqualified_reason="copied" if i == 7 else None)
                      for i in range(students))
            s.flush()
            s.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"))
    finally:
        db.dispose()


def seed_rounds(database_url: str, slug: str, rounds: range, seed_: int = 0) -> dict:
    """Add `rounds` of one scored submission per student with COPY, rebuild the board, VACUUM ANALYZE; seconds."""
    rng = random.Random(seed_ + rounds.start)
    db = Database(database_url)
    out: dict = {}
    try:
        with db.session() as s:
            challenge_id = s.scalar(select(Challenge.id).where(Challenge.slug == slug))
            users = list(s.scalars(select(User.id).where(User.username.like("student%")).order_by(User.id)))
            base_sub = (s.scalar(select(Submission.id).order_by(Submission.id.desc()).limit(1)) or 0) + 1
            base_score = (s.scalar(select(Score.id).order_by(Score.id.desc()).limit(1)) or 0) + 1
        n = len(users) * len(rounds)
        start = utcnow() - timedelta(days=60)
        span = 59 * 86400 / max(rounds.stop, 1)

        def rows():
            k = 0
            for r in rounds:
                for i, user_id in enumerate(users):
                    created = (start + timedelta(seconds=(r + rng.random()) * span)).replace(tzinfo=None).isoformat(" ")
                    # A coarse grid of scores, so that ties are common as they are with small test sets.
                    public, private = rng.randint(0, 300) / 300, rng.randint(0, 700) / 700
                    final = "t" if r < 2 and user_id % 4 == 0 else "f"
                    dq = "leaked" if (r * len(users) + i) % 997 == 0 else "\\N"
                    params = 20_000 + (i * 37 + r) % 80_000
                    yield (f"{base_sub + k}\t{challenge_id}\t{user_id}\tscored\t1\t0\t{base_sub + k:064x}\t400000\tmodel.pt\t"
                           f"{final}\t{dq}\t{created}\t{created}\t{created}\t{created}\ttorchscript\t{params}\t"
                           f"{params * 40}\t12.5\n",
                           f"{base_score + k}\t{base_sub + k}\t{challenge_id}\t{user_id}\taccuracy\t{public}\t"
                           f"{private}\t300\t700\tcpu\t{created}\n")
                    k += 1

        t0 = time.perf_counter()
        with db.engine.connect() as conn:
            dropped = _secondary_indexes(conn, ("submissions", "scores")) if n >= 100_000 else []
            for name, _ in dropped:  # building an index once after the load is faster than n inserts into it
                conn.execute(text(f"DROP INDEX {name}"))
            conn.commit()
            raw = conn.connection.driver_connection
            generated = list(rows())
            out["generate_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            _copy(raw, "submissions", _SUB_COLS, (a for a, _ in generated))
            _copy(raw, "scores", _SCORE_COLS, (b for _, b in generated))
            raw.commit()
            del generated
            out["copy_s"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            for _, definition in dropped:
                conn.execute(text(definition))
            for table in ("submissions", "scores"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
            conn.commit()
            out["index_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        with db.session() as s:
            board.refresh(s, challenge_id)  # every competitor's entries in one pass, as a re-score of all does
        out["board_rebuild_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("submissions", "scores", "board_entries", "board_progress"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            # Write the load's dirty pages out now, not in a checkpoint during the measurements after it.
            conn.execute(text("CHECKPOINT"))
        out["vacuum_s"] = time.perf_counter() - t1
        out["added"] = n
        out["seed_s"] = time.perf_counter() - t0
    finally:
        db.dispose()
    return out


def set_revealed(database_url: str, slug: str, revealed: bool) -> None:
    """Reveal (or hide) the private leaderboard of a challenge, as an instructor does."""
    db = Database(database_url)
    try:
        with db.session() as s:
            instructor.reveal(s, s.scalar(select(Challenge).where(Challenge.slug == slug)), revealed)
    finally:
        db.dispose()


def _summary(times: list[float], codes: list[int], size: int) -> dict:
    times = sorted(times)
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1],
            "n": len(times), "bytes": size, "full": sum(1 for c in codes if c == 200),
            "not_modified": sum(1 for c in codes if c == 304)}


def latency(url: str, requests_n: int, warmup: int = 10, http: requests.Session | None = None,
            conditional: bool = False, before=None) -> dict:
    """p50/p95/max milliseconds of sequential GETs over one keep-alive connection (If-None-Match when conditional;
    before() runs untimed ahead of each GET)."""
    http = http or requests.Session()
    times, codes, size, etag = [], [], 0, None
    for i in range(warmup + requests_n):
        if before is not None:
            before()
        headers = {"If-None-Match": etag} if conditional and etag else {}
        t0 = time.perf_counter()
        resp = http.get(url, timeout=60, headers=headers)
        took = time.perf_counter() - t0
        assert resp.status_code in (200, 304), (url, resp.status_code, resp.text[:300])
        etag = resp.headers.get("ETag", etag)
        if resp.status_code == 200:
            size = len(resp.content)
        if i >= warmup:
            times.append(took * 1000)
            codes.append(resp.status_code)
    return _summary(times, codes, size)


def viewers(url: str, database_url: str, slug: str, n: int = VIEWERS, seconds: float = 20.0,
            every_s: float = 1.0, change_every_s: float = 1.0) -> dict:
    """n viewers, each refreshing url every every_s with If-None-Match (as the page's refresh does in a browser),
    while a worker commits a score every change_every_s (the board changes: the next refresh of each is a full page).
    """
    times: list[float] = []
    codes: list[int] = []
    size = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def viewer(k: int) -> None:
        http, etag = requests.Session(), None
        time.sleep(every_s * k / n)  # spread out, as viewers who opened the page at different times
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            resp = http.get(url, timeout=60, headers={"If-None-Match": etag} if etag else {})
            took = time.perf_counter() - t0
            etag = resp.headers.get("ETag", etag)
            with lock:
                times.append(took * 1000)
                codes.append(resp.status_code)
                if resp.status_code == 200:
                    size[0] = len(resp.content)
            time.sleep(max(0.0, every_s - took))

    writes = [0]

    def writer() -> None:
        rng = random.Random(1)
        db = Database(database_url)
        try:
            while time.monotonic() < stop:
                commit_score(db, slug, rng)
                writes[0] += 1
                time.sleep(change_every_s)
        finally:
            db.dispose()

    threads = [threading.Thread(target=viewer, args=(k,)) for k in range(n)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = _summary(times, codes, size[0])
    full = sorted(t for t, c in zip(times, codes, strict=True) if c == 200)
    out.update(viewers=n, every_s=every_s, board_changes=writes[0],
               full_p95_ms=full[int(0.95 * (len(full) - 1))] if full else None)
    return out


def closed_loop(url: str, n: int = VIEWERS, each: int = 10) -> dict:
    """n clients at once, each sending `each` full GETs back to back (no ETag): the web tier's worst case."""
    times: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        http = requests.Session()
        for _ in range(each):
            t0 = time.perf_counter()
            resp = http.get(url, timeout=120)
            with lock:
                times.append((time.perf_counter() - t0) * 1000)
                codes.append(resp.status_code)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return dict(_summary(times, codes, 0), clients=n, per_s=len(times) / wall)


def commit_score(db: Database, slug: str, rng: random.Random) -> None:
    """One scored submission of a random student, recorded as the worker records one (claim, Score, finish_scored)."""
    with db.session() as s:
        challenge_id = s.scalar(select(Challenge.id).where(Challenge.slug == slug))
        user_id = s.scalar(select(User.id).where(User.username == f"student{rng.randrange(STUDENTS):04d}"))
        sub = Submission(challenge_id=challenge_id, user_id=user_id, status=states.QUEUED, model_sha256="0" * 64,
                         model_size=400_000)
        s.add(sub)
        s.flush()
        assert states.claim(s, sub.id, 1, "bench", 60)
        s.add(Score(submission_id=sub.id, challenge_id=challenge_id, user_id=user_id, metric="accuracy",
                    public_score=rng.randint(0, 300) / 300, private_score=rng.randint(0, 700) / 700, n_public=300,
                    n_private=700))
        assert states.finish_scored(s, sub.id, 1)


def signed_in(web_url: str, username: str, password: str) -> requests.Session:
    """A browser-like session signed in through the login form."""
    http = requests.Session()
    token = CSRF_RE.search(http.get(f"{web_url}/login", timeout=30).text).group(1)
    resp = http.post(f"{web_url}/login", data={"username": username, "password": password, "csrf_token": token},
                     timeout=30)
    assert resp.ok and "Log out" in http.get(f"{web_url}/", timeout=30).text, "could not sign in"
    return http


def measure_size(web_url: str, database_url: str, slug: str, prof: requests.Session, requests_n: int) -> dict:
    """Every page measure at the current size."""
    api = f"{web_url}/api/v1/challenges/{slug}/leaderboard"
    html = f"{web_url}/challenges/{slug}/leaderboard"
    dash = f"{web_url}/instructor/challenges/{slug}"
    pages: dict = {}
    db, rng = Database(database_url), random.Random(2)

    def change() -> None:
        commit_score(db, slug, rng)

    pages["JSON, 1 viewer"] = latency(api, requests_n)
    pages["HTML, 1 viewer"] = latency(html, requests_n)
    pages["JSON, 1 viewer, the board changed before each request"] = latency(api, requests_n // 2, before=change)
    pages["HTML, 1 viewer, the board changed before each request"] = latency(html, requests_n // 2, before=change)
    db.dispose()
    pages["JSON last page (offset 2900), 1 viewer"] = latency(f"{api}?offset=2900", requests_n // 2)
    pages["JSON refresh of an unchanged board (304), 1 viewer"] = latency(api, requests_n, conditional=True)
    pages["HTML refresh of an unchanged board (304), 1 viewer"] = latency(html, requests_n, conditional=True)
    pages[f"JSON, {VIEWERS} viewers refreshing every 1 s, a score a second"] = viewers(api, database_url, slug, seconds=15)
    pages[f"HTML, {VIEWERS} viewers refreshing every 1 s, a score a second"] = viewers(html, database_url, slug,
                                                                                      seconds=15)
    pages[f"JSON, {VIEWERS} clients back to back, no ETag"] = closed_loop(api, each=6)
    pages[f"HTML, {VIEWERS} clients back to back, no ETag"] = closed_loop(html, each=6)
    pages["instructor dashboard, newest page"] = latency(dash, requests_n // 4, warmup=3, http=prof)
    pages["instructor dashboard, status filter"] = latency(f"{dash}?status=scored", requests_n // 4, warmup=3, http=prof)
    set_revealed(database_url, slug, True)
    pages["JSON revealed, 1 viewer"] = latency(api, requests_n)
    pages["HTML revealed, 1 viewer"] = latency(html, requests_n)
    set_revealed(database_url, slug, False)
    return pages


def server_version(database_url: str) -> str:
    """The Postgres server version string."""
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
    finally:
        db.dispose()
