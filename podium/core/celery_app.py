"""The Celery application, built from Settings; shared by the web (to enqueue) and the worker."""
from __future__ import annotations

from celery import Celery

from podium.core.config import Settings

SCORE_TASK = "podium.score_submission"
REAP_TASK = "podium.reap"
PASSBACK_TASK = "podium.lti_passback"
# Queues: "podium" takes challenges that run anywhere; "gpu" and "cpu" those that need (or must not use) a GPU.
DEFAULT_QUEUE = "podium"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
# LTI grade passback: HTTP calls to LMSs, kept off the scoring queues so a slow LMS never sits before a model.
LTI_QUEUE = "lti"
# kombu's Redis transport keeps one list per queue and step and serves the lowest step first (0 = most urgent).
PRIORITY_STEPS = (0, 3, 6, 9)


def default_worker_queues(has_gpu: bool) -> str:
    """What a worker consumes unless told: its device's queue, the any-device queue and LTI passback."""
    return f"{GPU_QUEUE if has_gpu else CPU_QUEUE},{DEFAULT_QUEUE},{LTI_QUEUE}"


def create_celery(settings: Settings) -> Celery:
    """A Celery app for these settings; creating it connects to nothing."""
    broker_url = settings.broker_url
    transport_options: dict = {}
    if broker_url.startswith("sqla+"):
        from podium.core import sqla_broker
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        broker_url = sqla_broker.register(settings.broker_polling_interval) + broker_url[len("sqla"):]
    else:
        transport_options = {"polling_interval": settings.broker_polling_interval,
                             "visibility_timeout": settings.visibility_timeout_s,
                             # Fair share: enqueue() gives a busy course's messages a later step (podium.core.queueing).
                             "priority_steps": list(PRIORITY_STEPS)}
    app = Celery("podium", broker=broker_url, include=["podium.worker.tasks"], set_as_current=False)
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
