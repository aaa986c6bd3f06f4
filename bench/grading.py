"""End-to-end latency, worker breakdown and burst throughput on a live web + worker."""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from sqlalchemy import func, select, update

from bench import cpu
from podium.core.db import Database
from podium.core.models import Challenge, Submission
from tests.support import live

POLL_S = 0.1          # how often the "student" asks; faster polling steals CPU from the worker on 2 cores


def raise_limits(database_url: str, slug: str, **values) -> None:
    """Lift a challenge's per-student limits and its cost budgets (the burst and upload runs submit far more, and
    far larger models, than a student may)."""
    values.setdefault("max_params", None)
    values.setdefault("max_mflops", None)
    db = Database(database_url)
    try:
        with db.session() as s:
            s.execute(update(Challenge).where(Challenge.slug == slug).values(**values))
    finally:
        db.dispose()


def _epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.replace(tzinfo=dt.tzinfo or UTC).timestamp()


def end_to_end(stack: live.Stack, token: str, slug: str, model_bytes: bytes, runs: int,
               raw=None) -> list[dict]:
    """(b) Upload, then ask for the score every POLL_S until it is visible, one at a time; a raw pass between runs.

    Raw passes interleave with the runs so that load from elsewhere on the machine hits both alike.
    """
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    out = []
    for _ in range(runs):
        if raw is not None:
            time.sleep(0.5)   # let the worker's background work (the next spare child) finish first
            raw.one_pass()
            raw.one_pass()
        t0 = time.time()
        resp = http.post(f"{stack.url}/api/v1/challenges/{slug}/submissions",
                         files={"model": ("model.pt", model_bytes)}, timeout=60)
        t_posted = time.time()
        assert resp.status_code == 202, resp.text
        sub_id = resp.json()["id"]
        while True:
            body = http.get(f"{stack.url}/api/v1/submissions/{sub_id}", timeout=30).json()
            if body["status"] in ("scored", "failed"):
                break
            time.sleep(POLL_S)
        t_seen = time.time()
        assert body["status"] == "scored", body
        out.append({"id": sub_id, "t0": t0, "upload_s": t_posted - t0, "seen_s": t_seen - t0})
    return out


def worker_rows(database_url: str, ids: list[int]) -> dict[int, dict]:
    """Times and Score.timings of these submissions, read straight from the database."""
    db = Database(database_url)
    try:
        with db.session() as s:
            subs = s.scalars(select(Submission).where(Submission.id.in_(ids))).all()
            return {sub.id: {"created": _epoch(sub.created_at), "enqueued": _epoch(sub.enqueued_at),
                             "started": _epoch(sub.started_at), "finished": _epoch(sub.finished_at),
                             "status": sub.status, "error": sub.error,
                             "timings": dict(sub.score.timings or {}) if sub.score else {},
                             "device": sub.score.device if sub.score else None,
                             "versions": sub.score.versions if sub.score else None} for sub in subs}
    finally:
        db.dispose()


def breakdown(runs: list[dict], rows: dict[int, dict]) -> dict[str, float]:
    """(c) Median seconds of each stage from the upload request to the score seen by the student."""
    stages: dict[str, list[float]] = {}

    def put(key, value):
        if value is not None:
            stages.setdefault(key, []).append(value)
    for r in runs:
        row = rows[r["id"]]
        t = row["timings"]
        put("upload request (client)", r["upload_s"])
        put("upload start -> enqueued", row["enqueued"] - r["t0"] if row["enqueued"] else None)
        put("queue wait (enqueued -> claim)", t.get("queue_wait_s"))
        for key in ("inputs_s", "fork_s", "confine_s", "load_s", "inference_s", "transfer_s", "total_s",
                    "metric_s", "db_write_s", "worker_total_s"):
            put(f"worker {key}", t.get(key))
        put("claim -> finished_at (row)", row["finished"] - row["started"])
        put("upload start -> finished_at (committed)", row["finished"] - r["t0"])
        put("finished_at -> seen by poller", r["t0"] + r["seen_s"] - row["finished"])
        put("upload start -> seen (end to end)", r["seen_s"])
    return {k: statistics.median(v) for k, v in stages.items()}


def burst(stack: live.Stack, token: str, slug: str, model_bytes: bytes, n: int, clients: int = 8,
          timeout_s: float = 400) -> dict:
    """(d) n uploads as fast as `clients` threads can send them; wall time until the last score is committed."""
    database_url = stack.settings.database_url

    def upload(_i):
        with requests.Session() as http:
            resp = http.post(f"{stack.url}/api/v1/challenges/{slug}/submissions",
                             headers={"Authorization": f"Bearer {token}"},
                             files={"model": ("model.pt", model_bytes)}, timeout=120)
        assert resp.status_code == 202, resp.text
        return resp.json()["id"]

    worker_pid, web_pid = stack.procs["worker"].pid, stack.procs["web"].pid
    worker0, web0 = cpu.sample(worker_pid), cpu.sample(web_pid)
    t0 = time.time()
    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(upload, range(n)))
    t_uploaded = time.time()
    db = Database(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with db.session() as s:
                done = s.scalar(select(func.count()).select_from(Submission).where(
                    Submission.id.in_(ids), Submission.status.in_(("scored", "failed"))))
            if done >= n:
                break
            time.sleep(0.2)
    finally:
        db.dispose()
    worker1, web1 = cpu.sample(worker_pid), cpu.sample(web_pid)
    rows = worker_rows(database_url, ids)
    finished = [r["finished"] for r in rows.values() if r["finished"]]
    started = [r["started"] for r in rows.values() if r["started"]]
    spans = sorted((r["started"], r["finished"]) for r in rows.values() if r["started"] and r["finished"])
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return {"n": n, "scored": sum(r["status"] == "scored" for r in rows.values()),
            "failed": [r["error"] for r in rows.values() if r["status"] == "failed"][:3],
            "uploads_s": t_uploaded - t0, "wall_s": max(finished) - t0,
            "drain_s": max(finished) - min(started),
            "gap_between_tasks_s": statistics.median(gaps) if gaps else 0.0,
            "per_sub_worker_s": statistics.median(r["timings"].get("worker_total_s", 0) for r in rows.values()),
            "per_sub_inference_s": statistics.median(r["timings"].get("inference_s", 0) for r in rows.values()),
            "inference_share": sum(r["timings"].get("inference_s", 0) for r in rows.values())
            / (max(finished) - min(started)),
            "per_sub_claim_to_finish_s": statistics.median(r["finished"] - r["started"] for r in rows.values()
                                                           if r["finished"] and r["started"]),
            "timings_median_s": {k: statistics.median(r["timings"].get(k, 0.0) for r in rows.values())
                                 for k in ("queue_wait_s", "load_s", "inference_s", "transfer_s", "total_s",
                                           "metric_s", "db_write_s", "worker_total_s")},
            "cpu_per_sub_s": {**{k: v / n for k, v in cpu.worker_split(worker0, worker1).items()},
                              "web_s": cpu.total(web0, web1) / n}}
