"""(e) Leaderboard JSON and HTML latency with a full class: students x submissions bulk-inserted into Postgres."""
from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta

import requests
from sqlalchemy import event, insert, select, text, update

from server import leaderboard
from server.db import Database
from server.models import Challenge, Score, Submission, User, utcnow


def seed(database_url: str, slug: str, students: int, per_student: int, seed_: int = 0) -> dict:
    """Insert students and scored submissions directly (no HTTP, no worker); returns counts and seconds."""
    rng = random.Random(seed_)
    t0 = time.perf_counter()
    db = Database(database_url)
    try:
        with db.session() as s:
            challenge = s.scalar(select(Challenge).where(Challenge.slug == slug))
            base_user = (s.scalar(select(User.id).order_by(User.id.desc()).limit(1)) or 0) + 1
            s.execute(insert(User), [{"id": base_user + i, "username": f"student{i:03d}", "role": "student",
                                      "alias": f"fox{i:03d}" if i % 3 == 0 else None,
                                      "disqualified_reason": "copied" if i == 7 else None}
                                     for i in range(students)])
            base_sub = (s.scalar(select(Submission.id).order_by(Submission.id.desc()).limit(1)) or 0) + 1
            now = utcnow()
            subs, scores = [], []
            for i in range(students * per_student):
                sub_id, user_id = base_sub + i, base_user + i % students
                created = now - timedelta(days=30) + timedelta(seconds=rng.random() * 29 * 86400)
                # A coarse grid of scores, so that ties are common as they are with small test sets.
                public, private = rng.randint(0, 300) / 300, rng.randint(0, 700) / 700
                subs.append({"id": sub_id, "challenge_id": challenge.id, "user_id": user_id, "status": "scored",
                             "model_sha256": "0" * 64, "model_size": 400_000, "created_at": created,
                             "enqueued_at": created, "started_at": created, "finished_at": created,
                             "is_final": (i // students) < 2 and user_id % 4 == 0,
                             "disqualified_reason": "leaked" if i % 997 == 0 else None})
                scores.append({"submission_id": sub_id, "challenge_id": challenge.id, "user_id": user_id,
                               "metric": "accuracy", "public_score": public, "private_score": private,
                               "n_public": 300, "n_private": 700, "created_at": created,
                               "timings": {"inference_s": 0.1}, "device": "cpu"})
            for start in range(0, len(subs), 5000):
                s.execute(insert(Submission), subs[start:start + 5000])
                s.execute(insert(Score), scores[start:start + 5000])
            if s.get_bind().dialect.name == "postgresql":
                for table in ("users", "submissions", "scores"):
                    s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT max(id) FROM {table}))"))
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ANALYZE"))
                conn.commit()
    finally:
        db.dispose()
    return {"students": students, "submissions": students * per_student, "seed_s": time.perf_counter() - t0}


def set_revealed(database_url: str, slug: str, revealed: bool) -> None:
    """Reveal (or hide) the private leaderboard of a challenge."""
    db = Database(database_url)
    try:
        with db.session() as s:
            s.execute(update(Challenge).where(Challenge.slug == slug).values(revealed_at=utcnow() if revealed else None))
    finally:
        db.dispose()


def latency(url: str, requests_n: int, warmup: int = 10, token: str | None = None) -> dict:
    """p50/p95/max milliseconds of sequential GETs of url over one keep-alive connection."""
    http = requests.Session()
    if token:
        http.headers["Authorization"] = f"Bearer {token}"
    times = []
    size = 0
    for i in range(warmup + requests_n):
        t0 = time.perf_counter()
        resp = http.get(url, timeout=30)
        took = time.perf_counter() - t0
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
        size = len(resp.content)
        if i >= warmup:
            times.append(took * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1],
            "n": len(times), "bytes": size}


def statements_and_time(database_url: str, slug: str, instructor: str, reps: int = 20) -> dict:
    """In-process: SQL statements per board and per user rank, median ms of building the board, and the plans."""
    db = Database(database_url)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    try:
        with db.session() as s:
            challenge = s.scalar(select(Challenge).where(Challenge.slug == slug))
            viewer = s.scalar(select(User).where(User.username == instructor))
            some_user = s.scalar(select(Score.user_id).where(Score.challenge_id == challenge.id).limit(1))
            leaderboard.build(s, challenge, viewer)
            event.listen(db.engine, "before_cursor_execute", count)
            rows = len(leaderboard.build(s, challenge, viewer)["rows"])
            per_board = len(seen)
            leaderboard.user_rank(s, challenge, some_user)
            per_rank = len(seen) - per_board
            event.remove(db.engine, "before_cursor_execute", count)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                leaderboard.build(s, challenge, viewer)
                times.append(time.perf_counter() - t0)
            plans = []
            if s.get_bind().dialect.name == "postgresql":
                for query in leaderboard.board_statements(challenge.id, challenge.revealed_at is not None):
                    compiled = query.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
                    plans.append("\n".join(r[0] for r in s.execute(text(f"EXPLAIN ANALYZE {compiled}")).all()))
    finally:
        db.dispose()
    return {"rows": rows, "statements_per_board": per_board, "statements_per_rank": per_rank,
            "build_median_ms": statistics.median(times) * 1000, "plan": "\n\n".join(plans)}


def vacuum_analyze(database_url: str) -> None:
    """VACUUM ANALYZE the submissions table: the state autovacuum keeps a running deployment in.

    Right after a bulk insert Postgres cannot use index-only scans until the visibility map is set.
    """
    db = Database(database_url)
    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE submissions"))
    finally:
        db.dispose()


def server_version(database_url: str) -> str:
    """The Postgres server version string."""
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
    finally:
        db.dispose()


def measure_pages(web_url: str, database_url: str, slug: str, instructor_token: str, requests_n: int) -> dict:
    """p50/p95 of the board pages before and after the reveal, and the in-process statement counts."""
    api = f"{web_url}/api/v1/challenges/{slug}/leaderboard"
    html = f"{web_url}/challenges/{slug}/leaderboard"
    out: dict = {"pages": {}}
    set_revealed(database_url, slug, False)
    out["public"] = statements_and_time(database_url, slug, "prof")
    out["pages"]["JSON"] = latency(api, requests_n)
    out["pages"]["JSON, instructor"] = latency(api, requests_n, token=instructor_token)
    out["pages"]["HTML"] = latency(html, requests_n)
    set_revealed(database_url, slug, True)
    out["revealed"] = statements_and_time(database_url, slug, "prof")
    out["pages"]["JSON revealed"] = latency(api, requests_n)
    out["pages"]["HTML revealed"] = latency(html, requests_n)
    set_revealed(database_url, slug, False)
    return out
