"""Celery tasks: thin wrappers that take ids and hand off to plain modules."""
from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutting_down
from sqlalchemy.exc import InterfaceError, OperationalError

from worker.celery_app import REAP_TASK, SCORE_TASK

_warming: threading.Thread | None = None


@shared_task(name=SCORE_TASK, bind=True, acks_late=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def score_submission(self, submission_id: int, attempt: int = 1) -> str:
    """Grade one submission attempt (the message carries ids only)."""
    from worker.grading import grade
    from worker.runtime import get_runtime
    from worker.shutdown import state
    state.install()
    _wait_warm()
    return grade(get_runtime(self.app), int(submission_id), int(attempt))


@shared_task(name=REAP_TASK, bind=True)
def reap(self) -> dict:
    """Find stuck rows and re-enqueue or fail them."""
    from worker.reaper import reap_stuck
    from worker.runtime import get_runtime
    return reap_stuck(get_runtime(self.app))


@worker_process_init.connect
def _warm_up(sender=None, **_kwargs) -> None:
    """Start the scoring pool as soon as a worker process exists, so the first student does not wait for it.

    In a thread: the pool child must report up to Celery within 4 s, and importing torch in the
    zygote under load takes longer (the child was killed and respawned in a loop).
    """
    global _warming
    from celery import current_app
    from worker.runtime import get_runtime
    from worker.shutdown import ignore_sigterm_until_busy, watch_flag
    ignore_sigterm_until_busy()
    watch_flag()
    if getattr(current_app.conf, "podium_settings", None) is not None and current_app.conf.get("podium_warm_pool", True):
        rt = get_runtime(current_app)
        _warming = threading.Thread(target=_start_pool, args=(rt,), name="warm-sandbox", daemon=True)
        _warming.start()


def _start_pool(rt) -> None:
    try:
        rt.pool
    except Exception as exc:  # the first task starts it again and reports the failure properly
        import logging
        logging.getLogger(__name__).error("could not warm the scoring sandbox: %s", exc)


def _wait_warm() -> None:
    """The first task waits for the warm-up in progress rather than starting a second sandbox."""
    if _warming is not None:
        _warming.join()


@worker_process_shutdown.connect
def _shut_down(**_kwargs) -> None:
    from worker.runtime import close_runtime
    close_runtime()


@worker_shutting_down.connect
def _tell_children(sig=None, how=None, **_kwargs) -> None:
    """Warm shutdown in the main process: let each pool child finish or hand back the job it holds."""
    from worker.shutdown import forward_to_busy_children, raise_flag
    raise_flag()
    if how == "Warm":
        forward_to_busy_children()


@worker_init.connect
def _worker_settings(sender=None, **_kwargs) -> None:
    """Main process, before the pool forks: the shared shutdown flag, and worker-only broker settings.

    The app's broker_connection_max_retries is kept low so a web request never waits long on a
    publish; a worker must instead outlive a Redis restart (with the low value it exits with
    "Unrecoverable error" two seconds into the outage). kombu's Redis transport looks for messages
    of dead workers only every 10 s x throttle 10 = 100 s; one cheap ZRANGE every few seconds lets a
    killed worker's task return soon after the visibility timeout.
    """
    from worker.shutdown import prepare_flag
    prepare_flag()
    conf = sender.app.conf
    conf.broker_connection_max_retries = None
    if str(conf.broker_url or "").startswith(("redis://", "rediss://")):
        opts = dict(conf.broker_transport_options or {})
        visibility = float(opts.get("visibility_timeout", 3600))
        opts.setdefault("unacked_restore_interval", max(1, min(10, int(visibility // 4))))
        opts.setdefault("unacked_restore_throttle", 1)
        conf.broker_transport_options = opts
