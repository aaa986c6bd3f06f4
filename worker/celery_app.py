"""The Celery application, built from Settings; shared by the web (to enqueue) and the worker."""
from __future__ import annotations

from celery import Celery

from podium.config import Settings

SCORE_TASK = "podium.score_submission"
REAP_TASK = "podium.reap"
DEFAULT_QUEUE = "podium"


def create_celery(settings: Settings) -> Celery:
    """A Celery app for these settings; creating it connects to nothing."""
    broker_url = settings.broker_url
    transport_options: dict = {}
    if broker_url.startswith("sqla+"):
        from worker import sqla_broker
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        broker_url = sqla_broker.register(settings.broker_polling_interval) + broker_url[len("sqla"):]
    else:
        transport_options = {"polling_interval": settings.broker_polling_interval,
                             "visibility_timeout": settings.visibility_timeout_s}
    app = Celery("podium", broker=broker_url, include=["worker.tasks"], set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=DEFAULT_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        # A publish must not hang an upload request when the broker is away.
        broker_connection_timeout=3,
        broker_connection_max_retries=1,
        enable_utc=True,
    )
    app.conf.podium_settings = settings
    return app
