"""Celery tasks: thin wrappers that take ids and hand off to plain modules."""
from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import (
    celeryd_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)
from sqlalchemy.exc import InterfaceError, OperationalError

from podium.core.celery_app import PASSBACK_TASK, REAP_TASK, SCORE_TASK

_warming: threading.Thread | None = None
_reaper = None  # the reaper's rounds in this worker's main process


@shared_task(name=SCORE_TASK, bind=True, acks_late=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def score_submission(self, submission_id: int, attempt: int = 1) -> str:
    """Grade one submission attempt (the message carries ids only)."""
    from podium.worker.grading import grade
    from podium.worker.runtime import get_runtime
    from podium.worker.shutdown import state
    state.install()
    _wait_warm()
    return grade(get_runtime(self.app), int(submission_id), int(attempt))


@shared_task(name=PASSBACK_TASK, bind=True, acks_late=True, max_retries=None)
def lti_passback(self, passback_id: int) -> str:
    """Send one queued score to the LMS (AGS); retried with backoff while the platform fails."""
    from podium.worker.passback import MAX_RETRIES, backoff, deliver
    from podium.worker.runtime import get_runtime
    with get_runtime(self.app).db.session() as s:
        if deliver(s, int(passback_id)):
            return "sent"
    if self.request.retries >= MAX_RETRIES:
        return "failed"  # the row keeps its last error; the instructor's "send again" starts over
    raise self.retry(countdown=backoff(self.request.retries + 1))


@shared_task(name=REAP_TASK, bind=True)
def reap(self) -> dict:
    """Find stuck rows and re-enqueue or fail them; publish again passbacks whose task was lost."""
    from podium.worker.passback import resend_lost
    from podium.worker.reaper import reap_stuck
    from podium.worker.runtime import get_runtime
    rt = get_runtime(self.app)
    return dict(reap_stuck(rt), passbacks=resend_lost(rt.db, rt.celery))


@worker_process_init.connect
def _warm_up(sender=None, **_kwargs) -> None:
    """Start the scoring pool as soon as a worker process exists, so the first student does not wait for it.

    In a thread: the pool child must report up to Celery within 4 s, and importing torch in the
    zygote under load takes longer (the child was killed and respawned in a loop).
    """
    global _warming
    from celery import current_app

    from podium.worker.runtime import get_runtime
    from podium.worker.shutdown import ignore_sigterm_until_busy, watch_flag
    ignore_sigterm_until_busy()
    watch_flag()
    if getattr(current_app.conf, "podium_settings", None) is not None and current_app.conf.get("podium_warm_pool", True):
        rt = get_runtime(current_app)
        _warming = threading.Thread(target=_start_pool, args=(rt,), name="warm-sandbox", daemon=True)
        _warming.start()


def _start_pool(rt) -> None:
    try:
        rt.pool  # noqa: B018 (reading the property starts the pool)
    except Exception as exc:  # the first task starts it again and reports the failure properly
        import logging
        logging.getLogger(__name__).error("could not warm the scoring sandbox: %s", exc)


def _wait_warm() -> None:
    """The first task waits for the warm-up in progress rather than starting a second sandbox."""
    if _warming is not None:
        _warming.join()


@worker_process_shutdown.connect
def _shut_down(**_kwargs) -> None:
    from podium.worker.runtime import close_runtime
    close_runtime()


@worker_shutting_down.connect
def _tell_children(sig=None, how=None, **_kwargs) -> None:
    """Warm shutdown in the main process: let each pool child finish or hand back the job it holds."""
    from podium.worker.shutdown import forward_to_busy_children, raise_flag
    raise_flag()
    if _reaper is not None:
        _reaper.stop()
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
    import os

    from podium.worker.runtime import NODE_ENV
    from podium.worker.shutdown import prepare_flag
    prepare_flag()
    os.environ[NODE_ENV] = sender.hostname  # inherited by the pool children: their rows name this node
    conf = sender.app.conf
    conf.broker_connection_max_retries = None
    if str(conf.broker_url or "").startswith(("redis://", "rediss://")):
        opts = dict(conf.broker_transport_options or {})
        visibility = float(opts.get("visibility_timeout", 3600))
        opts.setdefault("unacked_restore_interval", max(1, min(10, int(visibility // 4))))
        opts.setdefault("unacked_restore_throttle", 1)
        conf.broker_transport_options = opts


@worker_ready.connect
def _start_reaper(sender=None, **_kwargs) -> None:
    """Main process, pool running: hand back this node's earlier rows, then do the reaper's rounds."""
    global _reaper
    import os

    from podium.worker.reaper import ReaperThread
    from podium.worker.runtime import NODE_ENV, WorkerRuntime
    app = sender.app
    if getattr(app.conf, "podium_settings", None) is None or not app.conf.get("podium_reaper", True):
        return
    _reaper = ReaperThread(WorkerRuntime(app.conf.podium_settings, app), os.environ.get(NODE_ENV, ""))
    _reaper.start()


@celeryd_init.connect
def _stop_on_hangup(sender=None, instance=None, **_kwargs) -> None:
    """SIGHUP makes a warm shutdown, as SIGTERM does (Celery would re-exec itself, with its children, in place)."""
    from celery.apps.worker import install_worker_term_handler
    tweaks = instance.install_platform_tweaks

    def install(worker):
        tweaks(worker)
        install_worker_term_handler(worker, sig="SIGHUP")

    instance.install_platform_tweaks = install
