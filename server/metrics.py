"""Prometheus /metrics: queue length, scoring and queue-wait histograms, failures by reason.

Every value is computed from the database at scrape time, so any gunicorn worker answers the same
numbers and no worker process has to share in-memory counters (no prometheus multiprocess dir).
The counters are totals over the rows that exist: an instructor's re-score moves a row out of
`failed`, which Prometheus reads as a counter reset.
"""
from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, extract, func, literal, select
from sqlalchemy.orm import Session

from podium.core import states
from podium.core.models import Challenge, Submission, utcnow
from podium.server.services import db_session, services

metrics = Blueprint("metrics", __name__)

SCORING_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0)
DEFAULT_QUEUE = "podium"

# Failure reasons are free text for the student; Prometheus needs a few stable labels.
# First match wins; patterns follow the texts of worker/sandbox/reasons.py and worker/grading.py.
REASON_PATTERNS = (
    ("time_limit", "ran longer than%"),
    ("time_limit", "used more CPU time%"),
    ("memory_limit", "%memory%"),
    ("load_error", "the model failed to load%"),
    ("forward_error", "forward() raised%"),
    ("output_shape", "output shape%"),
    ("crash", "the model crashed%"),
    ("crash", "the model process exited%"),
    ("crash", "was killed by the system%"),
    ("infrastructure", states.INFRA_ERROR + "%"),
)


def seconds_between(session: Session, start, end):
    """A SQL expression for (end - start) in seconds on this session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def reason_label(error):
    """A SQL CASE that maps a failure text to one of a few stable labels."""
    whens = [(error.like(pattern), literal(label)) for label, pattern in REASON_PATTERNS]
    return case(*whens, else_=literal("other"))


def _histogram(session: Session, name: str, doc: str, seconds, buckets, group_by, where) -> HistogramMetricFamily:
    """One statement: cumulative bucket counts, count and sum of `seconds` per group."""
    cols = [func.sum(case((seconds <= b, 1), else_=0)) for b in buckets]
    rows = session.execute(select(group_by, func.count(), func.coalesce(func.sum(seconds), 0.0), *cols)
                           .where(*where).group_by(group_by)).all()
    family = HistogramMetricFamily(name, doc, labels=["status"])
    for status, count, total, *cumulative in rows:
        pairs = [(repr(float(b)), int(c or 0)) for b, c in zip(buckets, cumulative)] + [("+Inf", int(count))]
        family.add_metric([status], pairs, sum_value=float(total))
    return family


def collect(session: Session) -> list:
    """Every Podium metric family, read from the database now."""
    by_status = dict(session.execute(select(Submission.status, func.count()).group_by(Submission.status)).all())
    submissions = GaugeMetricFamily("podium_submissions", "Submissions by status", labels=["status"])
    for status in states.STATUSES:
        submissions.add_metric([status], by_status.get(status, 0))

    queue = func.coalesce(Challenge.queue, DEFAULT_QUEUE)
    waiting = session.execute(select(queue, func.count(), func.min(func.coalesce(Submission.enqueued_at, Submission.created_at)))
                              .join(Challenge, Challenge.id == Submission.challenge_id)
                              .where(Submission.status == states.QUEUED).group_by(queue)).all()
    length = GaugeMetricFamily("podium_queue_length", "Submissions waiting for a worker", labels=["queue"])
    oldest = GaugeMetricFamily("podium_queue_oldest_seconds", "Age of the oldest waiting submission", labels=["queue"])
    now = utcnow()
    for name, count, first in waiting:
        length.add_metric([name], count)
        oldest.add_metric([name], max(0.0, (now - first).total_seconds()) if first else 0.0)

    reason = reason_label(Submission.error)
    kind = func.coalesce(Submission.failure_kind, states.FAILURE_MODEL)
    failures = CounterMetricFamily("podium_submission_failures", "Failed submissions by kind and reason",
                                   labels=["kind", "reason"])
    for k, r, count in session.execute(select(kind, reason, func.count()).where(Submission.status == states.FAILED)
                                       .group_by(kind, reason)).all():
        failures.add_metric([k, r], count)

    finished = (Submission.status.in_(states.FINISHED), Submission.started_at.is_not(None),
                Submission.finished_at.is_not(None))
    scoring = _histogram(session, "podium_scoring_duration_seconds", "Claim to result, per finished submission",
                         seconds_between(session, Submission.started_at, Submission.finished_at), SCORING_BUCKETS,
                         Submission.status, finished)
    wait = _histogram(session, "podium_queue_wait_seconds", "Upload (or re-queue) to claim, per started submission",
                      seconds_between(session, func.coalesce(Submission.enqueued_at, Submission.created_at),
                                      Submission.started_at),
                      QUEUE_BUCKETS, Submission.status, (Submission.started_at.is_not(None),))
    return [submissions, length, oldest, failures, scoring, wait]


class _Collector:
    """Adapter that hands prometheus-client the families of one scrape."""

    def __init__(self, session: Session):
        self.session = session

    def collect(self):
        return collect(self.session)


def may_scrape() -> bool:
    """With PODIUM_METRICS_TOKEN: the request carries it as a Bearer token. Without: it comes from this host."""
    token = services().settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return ipaddress.ip_address(request.remote_addr or "0.0.0.0").is_loopback


@metrics.get("/metrics")
def scrape():
    """Prometheus text exposition of Podium's queue, scoring and failure metrics (token or loopback only)."""
    if not may_scrape():
        return Response("metrics need 'Authorization: Bearer <PODIUM_METRICS_TOKEN>'\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(db_session()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
