"""Graceful worker shutdown: finish the model in hand within a grace period, otherwise hand the row back.

Celery's warm shutdown (SIGTERM to the main process) already waits for the task in hand. Two things
are added here. The main process forwards SIGTERM to the pool children holding a task, so a child learns of
the shutdown however the signal was sent (`kill <pid>`, `docker stop`, systemd's control-group kill).
A child busy grading then gets `grace_s` seconds to finish; after that it puts its row back in the
queue as a new attempt (server.states.requeue, not counted as a retry) and exits, instead of being
SIGKILLed by the supervisor with the row left running until its lease runs out.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Callable

log = logging.getLogger(__name__)

GRACE_ENV = "PODIUM_SHUTDOWN_GRACE_S"
DEFAULT_GRACE_S = 30.0


def grace_seconds(env=os.environ) -> float:
    """How long a busy pool child may keep scoring after SIGTERM (PODIUM_SHUTDOWN_GRACE_S)."""
    return float(env.get(GRACE_ENV, DEFAULT_GRACE_S))


class Shutdown:
    """Per-process shutdown state: whether a job is in hand, and what to do when time runs out."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._lock = threading.RLock()  # re-entrant: the SIGTERM handler may interrupt a holder
        self._hand_back: Callable[[], None] | None = None
        self._timer: threading.Timer | None = None
        self._previous = signal.SIG_DFL
        self.grace_s = DEFAULT_GRACE_S

    def install(self, grace_s: float | None = None) -> None:
        """Handle SIGTERM in this (pool child) process; idempotent, so it can run before every task.

        billiard installs its own SIGTERM handler after worker_process_init, so this runs at task
        time; billiard's handler is kept and used whenever no job is in hand.
        """
        self.grace_s = grace_seconds() if grace_s is None else grace_s
        current = signal.getsignal(signal.SIGTERM)
        if current != self._on_sigterm:
            self._previous = current
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def busy(self, hand_back: Callable[[], None]) -> "_Busy":
        """Context manager around one job; hand_back() runs if shutdown's grace ends before the job does."""
        return _Busy(self, hand_back)

    def _on_sigterm(self, signum, frame) -> None:
        with self._lock:
            hand_back = self._hand_back
            if hand_back is None:  # nothing in hand: exit the way this process would have without us
                if callable(self._previous):
                    self._previous(signum, frame)
                    return
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if self.requested.is_set():
                return
            self.requested.set()
            log.warning("shutdown requested: finishing the job in hand (up to %.0f s)", self.grace_s)
            self._timer = threading.Timer(self.grace_s, self._grace_over)
            self._timer.daemon = True
            self._timer.start()

    def _grace_over(self) -> None:
        with self._lock:
            hand_back = self._hand_back
            if hand_back is None:
                return
            log.warning("shutdown grace of %.0f s is over: handing the job back", self.grace_s)
            try:
                hand_back()
            except Exception:
                log.exception("could not hand the job back; the reaper will after its lease runs out")
            # The scoring child dies with the zygote, which sees this process go.
            os._exit(0)

    def _enter(self, hand_back: Callable[[], None]) -> None:
        with self._lock:
            self._hand_back = hand_back

    def _leave(self) -> None:
        with self._lock:
            self._hand_back = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


class _Busy:
    def __init__(self, shutdown: Shutdown, hand_back: Callable[[], None]):
        self.shutdown, self.hand_back = shutdown, hand_back

    def __enter__(self):
        self.shutdown._enter(self.hand_back)
        return self

    def __exit__(self, *exc):
        self.shutdown._leave()


def forward_to_busy_children(sig: int = signal.SIGTERM) -> list[int]:
    """Send sig to the pool children that hold a task (called in the Celery main process on warm shutdown).

    Idle children are left to Celery's own pool shutdown; signalling them only makes billiard respawn them.
    """
    from celery.worker.state import active_requests
    sent = []
    for pid in {getattr(r, "worker_pid", None) for r in list(active_requests)}:
        if not pid:
            continue
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except OSError:
            pass
    return sent


state = Shutdown()
