"""What one worker process keeps between tasks: DB, store, warm scoring pool, cached labels."""
from __future__ import annotations

import logging
import os
import socket
from functools import cached_property

import numpy as np

from podium.core.config import Settings
from podium.core.db import Database
from podium.core.split import public_mask
from podium.core.storage import open_store

log = logging.getLogger(__name__)

NODE_ENV = "PODIUM_WORKER_NODE"  # the Celery node name, set by the worker's main process for its pool children


class WorkerRuntime:
    """Long-lived state of a worker process; labels stay here and never reach a scoring child."""

    def __init__(self, settings: Settings, celery_app=None):
        self.settings = settings
        self.celery = celery_app
        # "<node name>:<pid>": a restarted worker with the same node name knows the rows it held before.
        self.name = f"{os.environ.get(NODE_ENV) or socket.gethostname()}:{os.getpid()}"
        self._labels: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def store(self):
        return open_store(self.settings)

    @cached_property
    def pool(self):
        from podium.worker.sandbox import ScoringPool
        pool = ScoringPool(log=log, allow_incomplete=self.settings.sandbox_allow_incomplete)
        pool.start()
        return pool

    def labels(self, test_sha: str, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The held-out labels and the public-row mask of a test set, read once per process."""
        key = (test_sha, fraction, seed)
        if key not in self._labels:
            with np.load(self.store.local_path(test_sha), allow_pickle=False) as npz:
                y = np.asarray(npz["y"], dtype=np.int64)
            self._labels[key] = (y, public_mask(y, fraction, seed))
        return self._labels[key]

    def close(self) -> None:
        """Stop the scoring pool and release connections."""
        if "pool" in self.__dict__:
            self.pool.close()
        if "db" in self.__dict__:
            self.db.dispose()


_runtime: WorkerRuntime | None = None


def get_runtime(celery_app) -> WorkerRuntime:
    """This process's runtime, created on first use."""
    global _runtime
    if _runtime is None:
        _runtime = WorkerRuntime(celery_app.conf.podium_settings, celery_app)
    return _runtime


def close_runtime() -> None:
    """Shut this process's runtime down (worker process exit)."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None
