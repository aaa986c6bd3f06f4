"""Running the long-lived server processes: web (gunicorn), worker and beat (Celery)."""
from __future__ import annotations

import os

from podium.core.config import Settings


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 5000, workers: int = 2, threads: int = 4) -> None:
    """Run the web app under gunicorn: threads for requests, request heads read by each process's event loop."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    settings.check()  # before any worker forks: refuse production with a default secret in one clear line

    from podium.server.app import create_app
    from podium.server.serving import worker_class

    worker = worker_class(settings.head_timeout_s, settings.body_idle_timeout_s, settings.small_body_kb * 1024)

    class _Gunicorn(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                               "worker_class": worker, "timeout": 120, "graceful_timeout": 10,
                               "accesslog": os.environ.get("PODIUM_ACCESS_LOG"), "loglevel": "info"}.items():
                self.cfg.set(key, value)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl), which
                # every server on the host would share; Podium does not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(settings)

        def run(self):
            _StopOnHangup(self).run()

    class _StopOnHangup(Arbiter):
        """gunicorn reloads on SIGHUP; Podium stops on it, as on SIGTERM (a closing terminal, `kill -HUP`)."""

        def handle_hup(self):
            self.handle_term()

    _Gunicorn().run()


def worker_environment(settings: Settings) -> dict:
    """Environment changes for a worker: pin it to its GPU (children and the scoring sandbox inherit them)."""
    return {} if settings.gpu is None else {"CUDA_VISIBLE_DEVICES": settings.gpu}


def worker_queues(settings: Settings, queues: str | None) -> str:
    """The queues a worker consumes: as given, else PODIUM_QUEUES, else its device's queue and the shared one."""
    from podium.core.celery_app import default_worker_queues
    chosen = queues or settings.worker_queues or default_worker_queues(has_gpu=settings.gpu is not None)
    names = [q.strip() for q in chosen.split(",") if q.strip()]
    if not names:
        raise ValueError("a worker needs at least one queue")
    return ",".join(names)


def worker(settings: Settings, queues: str | None = None, concurrency: int = 1, hostname: str | None = None,
           loglevel: str = "INFO") -> None:
    """Run one Celery worker: concurrency 1 and prefetch 1 per GPU (or CPU host); PODIUM_GPU pins its device."""
    from podium.core.celery_app import create_celery
    os.environ.update(worker_environment(settings))
    queues = worker_queues(settings, queues)
    app = create_celery(settings)
    app.set_current()
    app.set_default()
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "--pool=prefork",
            f"--queues={queues}", f"--max-tasks-per-child={settings.worker_max_tasks}", "--without-gossip",
            "--without-mingle"]
    if hostname is None and settings.gpu is not None:
        hostname = f"gpu{settings.gpu}@%h"  # one worker per GPU on a host: distinct node names
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)


def beat(settings: Settings, interval_s: float = 15.0, loglevel: str = "INFO") -> None:
    """Run Celery beat with the reaper schedule."""
    from podium.core.celery_app import REAP_TASK, create_celery
    app = create_celery(settings)
    app.set_current()
    app.conf.beat_schedule = {"podium-reaper": {"task": REAP_TASK, "schedule": interval_s}}
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    class _StopOnHangup(app.Beat):
        """Celery beat saves its schedule and stops on SIGTERM and SIGINT; Podium's beat on SIGHUP too."""

        def install_sync_handler(self, service):
            from celery import platforms
            super().install_sync_handler(service)
            # Set, not left to the default action: `nohup` or a script's `&` start the process with SIGHUP ignored.
            platforms.signals["SIGHUP"] = platforms.signals["SIGTERM"]

    _StopOnHangup(loglevel=loglevel, schedule=str(settings.data_dir / "beat-schedule")).run()
