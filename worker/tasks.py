"""Celery tasks: thin wrappers that take ids and hand off to plain modules."""
from __future__ import annotations

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutting_down
from sqlalchemy.exc import InterfaceError, OperationalError

from worker.celery_app import REAP_TASK, SCORE_TASK


@shared_task(name=SCORE_TASK, bind=True, acks_late=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def score_submission(self, submission_id: int, attempt: int = 1) -> str:
    """Grade one submission attempt (the message carries ids only)."""
    from worker.grading import grade
    from worker.runtime import get_runtime
    from worker.shutdown import state
    state.install()
    return grade(get_runtime(self.app), int(submission_id), int(attempt))


@shared_task(name=REAP_TASK, bind=True)
def reap(self) -> dict:
    """Find stuck rows and re-enqueue or fail them."""
    from worker.reaper import reap_stuck
    from worker.runtime import get_runtime
    return reap_stuck(get_runtime(self.app))


@worker_process_init.connect
def _warm_up(sender=None, **_kwargs) -> None:
    """Start the scoring pool as soon as a worker process exists, so the first student does not wait for it."""
    from celery import current_app
    from worker.runtime import get_runtime
    if getattr(current_app.conf, "podium_settings", None) is not None and current_app.conf.get("podium_warm_pool", True):
        get_runtime(current_app).pool


@worker_process_shutdown.connect
def _shut_down(**_kwargs) -> None:
    from worker.runtime import close_runtime
    close_runtime()


@worker_shutting_down.connect
def _tell_children(sig=None, how=None, **_kwargs) -> None:
    """Warm shutdown in the main process: let each pool child finish or hand back the job it holds."""
    if how == "Warm":
        from worker.shutdown import forward_to_busy_children
        forward_to_busy_children()


@worker_init.connect
def _worker_broker_settings(sender=None, **_kwargs) -> None:
    """Worker-only settings: reconnect while the broker is away, restore lost messages promptly, time to warm up.

    The app's broker_connection_max_retries is kept low so a web request never waits long on a
    publish; a worker must instead outlive a Redis restart (with the low value it exits with
    "Unrecoverable error" two seconds into the outage). kombu's Redis transport looks for messages
    of dead workers only every 10 s x throttle 10 = 100 s; one cheap ZRANGE every few seconds lets a
    killed worker's task return soon after the visibility timeout.
    """
    conf = sender.app.conf
    conf.broker_connection_max_retries = None
    # A new pool child warms its scoring sandbox (imports torch) before it reports up; under load that
    # takes longer than Celery's 4 s default, and the child was killed and respawned in a loop.
    conf.worker_proc_alive_timeout = max(float(conf.worker_proc_alive_timeout or 0), 120.0)
    if str(conf.broker_url or "").startswith(("redis://", "rediss://")):
        opts = dict(conf.broker_transport_options or {})
        visibility = float(opts.get("visibility_timeout", 3600))
        opts.setdefault("unacked_restore_interval", max(1, min(10, int(visibility // 4))))
        opts.setdefault("unacked_restore_throttle", 1)
        conf.broker_transport_options = opts
