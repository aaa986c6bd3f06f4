"""Grading one submission: claim the row, score in the sandbox, write the result in one short transaction."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from podium.core import states
from podium.core.budgets import over_budget
from podium.core.modelcheck import ModelRejected
from podium.core.modelformat import inspect_model
from podium.core.models import Score, Submission, utcnow
from podium.core.queueing import enqueue
from podium.worker.runtime import WorkerRuntime
from podium.worker.scoring import Evaluation, evaluate

log = logging.getLogger(__name__)

LEASE_S = 30.0
HEARTBEAT_S = 5.0
MAX_INFRA_RETRIES = 3
RECORD_TRIES = 6          # a finished score survives a database blip of about half a minute
MB = 1 << 20


def lease_seconds(env=os.environ) -> float:
    """How long a running row's lease lasts without renewal (PODIUM_LEASE_S, default 30 s)."""
    return float(env.get("PODIUM_LEASE_S", LEASE_S))


def heartbeat_seconds(lease_s: float) -> float:
    """How often the lease is renewed: every 5 s, or more often for short leases (several beats per lease)."""
    return min(HEARTBEAT_S, lease_s / 4)


@dataclass(frozen=True)
class Job:
    """Plain copy of what scoring needs, so no DB session stays open while the model runs."""

    submission_id: int
    attempt: int
    model_sha256: str
    test_sha256: str
    num_classes: int
    metric: str
    public_fraction: float
    split_seed: int
    time_limit_s: float
    memory_limit_mb: int
    max_model_mb: float
    queue: str | None
    queue_wait_s: float
    max_params: int | None = None
    max_mflops: float | None = None


@dataclass
class Outcome:
    """What scoring produced: an evaluation, or a reason the model failed."""

    evaluation: Evaluation | None = None
    reason: str | None = None
    timings: dict = field(default_factory=dict)
    device: str | None = None
    format: str | None = None
    versions: dict = field(default_factory=dict)
    kind: str = states.FAILURE_MODEL
    # Submission columns the sandbox measured: format, params, flops_per_input, inference_ms, peak_memory_mb.
    measured: dict = field(default_factory=dict)


class InfrastructureError(Exception):
    """Grading could not happen for reasons that are not the student's fault."""


def load_job(session, submission_id: int, attempt: int) -> Job | None:
    """The job for this message, or None when the row is gone, finished, or on a newer attempt."""
    sub = session.get(Submission, submission_id)
    if sub is None or sub.attempt != attempt or sub.status in states.FINISHED:
        return None
    c = sub.challenge
    since = sub.enqueued_at or sub.created_at
    return Job(submission_id=sub.id, attempt=sub.attempt, model_sha256=sub.model_sha256, test_sha256=c.test_sha256,
               num_classes=c.num_classes, metric=c.metric, public_fraction=c.public_fraction, split_seed=c.split_seed,
               time_limit_s=c.time_limit_s, memory_limit_mb=c.memory_limit_mb, max_model_mb=c.max_model_mb,
               queue=c.queue, queue_wait_s=max(0.0, (utcnow() - since).total_seconds()),
               max_params=c.max_params, max_mflops=c.max_mflops)


class Heartbeat:
    """Renews the row's lease in the background while the model runs, each time in its own short session."""

    def __init__(self, rt: WorkerRuntime, submission_id: int, attempt: int, lease_s: float | None = None):
        self.rt, self.submission_id, self.attempt = rt, submission_id, attempt
        self.lease_s = lease_s or lease_seconds()
        self.every_s = heartbeat_seconds(self.lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{submission_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                with self.rt.db.session() as s:
                    states.renew_lease(s, self.submission_id, self.attempt, self.lease_s)
            except Exception as exc:  # a missed beat is survivable; the lease has slack for several
                log.warning("lease renewal for submission %s failed: %s", self.submission_id, exc)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.every_s + 1)


def run_job(rt: WorkerRuntime, job: Job) -> Outcome:
    """Check the archive, run the model in a confined child, evaluate against the labels held here."""
    from podium.worker.sandbox import SandboxUnavailable  # the sandbox imports numpy/torch helpers lazily
    t0 = time.perf_counter()
    try:  # missing blobs and an unreachable object store (StoreError is an OSError) are not the student's fault
        model_path = rt.store.local_path(job.model_sha256)
        inputs_path = rt.store.local_path(job.test_sha256)
        labels, public = rt.labels(job.test_sha256, job.public_fraction, job.split_seed)
    except OSError as exc:
        raise InfrastructureError(str(exc)) from exc
    try:
        fmt = inspect_model(model_path, max_bytes=int(job.max_model_mb * MB))
    except ModelRejected as exc:
        return Outcome(reason=exc.reason)
    try:
        result = rt.pool.run(model_path=str(model_path), inputs_path=str(inputs_path), inputs_key=job.test_sha256,
                             num_classes=job.num_classes, time_limit_s=job.time_limit_s,
                             memory_limit_mb=rt.settings.scoring_memory_mb(job.memory_limit_mb),
                             max_params=job.max_params, max_mflops=job.max_mflops)
    except SandboxUnavailable as exc:
        raise InfrastructureError(str(exc)) from exc
    timings = {"queue_wait_s": job.queue_wait_s, **{k: float(v) for k, v in result.timings.items()}}
    measured = measured_columns(result, fmt)
    found = {"device": result.device, "format": fmt, "versions": versions(fmt, rt.pool.health_report()),
             "measured": measured}
    # Over a budget beats every other outcome: the model never gets a score, whether or not it also failed.
    budget = over_budget(params=measured["params"], flops_per_input=measured["flops_per_input"],
                         max_params=job.max_params, max_mflops=job.max_mflops)
    if budget:
        return Outcome(reason=budget, timings=timings, kind=states.FAILURE_BUDGET, **found)
    if not result.ok:
        return Outcome(reason=result.reason, timings=timings, **found)
    if (job.max_params or job.max_mflops) and (measured["params"] is None or measured["flops_per_input"] is None):
        why = result.cost.get("error") or "the scoring child did not report them"
        return Outcome(reason=f"this challenge has a cost budget, but the model's size could not be measured ({why})",
                       timings=timings, kind=states.FAILURE_BUDGET, **found)
    if result.scores.shape[0] != labels.shape[0]:
        return Outcome(reason=f"output shape {list(result.scores.shape)}, expected [{labels.shape[0]}, {job.num_classes}]",
                       timings=timings, **found)
    t_metric = time.perf_counter()
    evaluation = evaluate(result.scores, labels, public, job.metric, job.num_classes)
    timings["metric_s"] = time.perf_counter() - t_metric
    timings["worker_total_s"] = time.perf_counter() - t0
    return Outcome(evaluation=evaluation, timings=timings, **found)


def measured_columns(result, fmt: str | None) -> dict:
    """The submission columns a sandbox run fills (None where it could not measure); the format is the one the
    worker read from the file's container, not the child's word."""
    return {"format": fmt, "params": result.cost.get("params"), "flops_per_input": result.cost.get("flops_per_input"),
            "inference_ms": result.inference_ms, "peak_memory_mb": result.peak_memory_mb if result.ok else None}


def record(rt: WorkerRuntime, job: Job, outcome: Outcome) -> bool:
    """Write the outcome in one transaction; False when the row moved on meanwhile (nothing written)."""
    t0 = time.perf_counter()
    with rt.db.session() as s:
        if outcome.evaluation is None:
            return states.fail(s, job.submission_id, outcome.reason or "scoring failed", kind=outcome.kind,
                               attempt=job.attempt, **outcome.measured)
        sub = s.get(Submission, job.submission_id)
        if sub is None or sub.attempt != job.attempt or sub.status != states.RUNNING:
            return False
        if sub.score is not None:  # a re-score replaces the old result
            s.delete(sub.score)
            s.flush()
        e = outcome.evaluation
        timings = dict(outcome.timings, db_write_s=time.perf_counter() - t0)
        s.add(Score(submission_id=sub.id, challenge_id=sub.challenge_id, user_id=sub.user_id, metric=job.metric,
                    public_score=e.public_score, private_score=e.private_score, n_public=e.n_public,
                    n_private=e.n_private, public_per_class=e.public_per_class, public_confusion=e.public_confusion,
                    timings=timings, device=outcome.device, versions=outcome.versions or versions(outcome.format)))
        if not states.finish_scored(s, job.submission_id, job.attempt, **outcome.measured):
            s.rollback()
            return False
        return True


def versions(fmt: str | None = None, sandbox: dict | None = None) -> dict:
    """The provenance recorded with each score: what scored it (podium, torch, CUDA; onnxruntime for ONNX) and the format.

    sandbox: the scoring process's health report, whose versions are those that ran the model.
    """
    import importlib.metadata as md

    import torch
    sandbox = sandbox or {}
    out = {"podium": md.version("podium"), "torch": sandbox.get("torch") or torch.__version__,
           "cuda": torch.version.cuda, "format": fmt}
    if fmt == "onnx":
        out["onnxruntime"] = sandbox.get("onnxruntime") or md.version("onnxruntime")
    return out


def handle_infrastructure_error(rt: WorkerRuntime, job: Job, exc: Exception) -> str:
    """Hand the row back for another try, or fail it as the platform's fault after a few."""
    log.error("infrastructure error on submission %s: %s", job.submission_id, exc)
    with rt.db.session() as s:
        sub = s.get(Submission, job.submission_id)
        if sub is not None and sub.infra_retries < MAX_INFRA_RETRIES:
            if states.requeue(s, job.submission_id, attempt=job.attempt):
                s.commit()
                if rt.celery is not None:
                    enqueue(rt.celery, s, job.submission_id, job.attempt + 1, job.queue or "podium")
                return "requeued"
        states.fail(s, job.submission_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=job.attempt)
    return "failed"


def record_with_retries(rt: WorkerRuntime, job: Job, outcome: Outcome, tries: int = RECORD_TRIES) -> bool:
    """record(), retried with backoff while the database is unreachable, so a computed score is not thrown away."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    for i in range(tries):
        try:
            return record(rt, job, outcome)
        except (OperationalError, InterfaceError) as exc:
            if i == tries - 1:
                raise
            wait = min(2.0 ** i, 10.0)
            log.warning("submission %s: could not write the result (%s); retrying in %.0f s",
                        job.submission_id, exc.__class__.__name__, wait)
            time.sleep(wait)
    return False


def hand_back(rt: WorkerRuntime, job: Job) -> bool:
    """Put a row this worker cannot finish back in the queue as a new attempt (shutdown; not the student's fault)."""
    with rt.db.session() as s:
        if not states.requeue(s, job.submission_id, attempt=job.attempt, count_retry=False):
            return False
        s.commit()
        log.warning("submission %s: handed back as attempt %s", job.submission_id, job.attempt + 1)
        if rt.celery is not None:
            enqueue(rt.celery, s, job.submission_id, job.attempt + 1, job.queue or "podium")
    return True


def grade(rt: WorkerRuntime, submission_id: int, attempt: int) -> str:
    """Grade one submission attempt; safe to call twice for the same message (idempotent)."""
    from podium.worker.shutdown import state as shutdown
    lease_s = lease_seconds()
    with rt.db.session() as s:
        job = load_job(s, submission_id, attempt)
        if job is None:
            log.info("submission %s attempt %s: nothing to do (finished, stale or missing)", submission_id, attempt)
            return "skipped"
        if not states.claim(s, submission_id, attempt, rt.name, lease_s):
            log.info("submission %s attempt %s is being graded elsewhere", submission_id, attempt)
            return "skipped"
    with shutdown.busy(lambda: hand_back(rt, job)):
        try:
            with Heartbeat(rt, submission_id, attempt, lease_s):
                outcome = run_job(rt, job)
        except InfrastructureError as exc:
            return handle_infrastructure_error(rt, job, exc)
        written = record_with_retries(rt, job, outcome)
    status = "scored" if outcome.evaluation is not None else "failed"
    if written and status == "scored":
        from podium.worker.passback import after_scored
        after_scored(rt.db, rt.celery, submission_id)
    log.info("submission %s attempt %s: %s%s", submission_id, attempt, status, "" if written else " (row moved on; dropped)")
    return status if written else "dropped"
