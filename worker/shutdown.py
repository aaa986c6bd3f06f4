"""Graceful worker shutdown: finish the model in hand within a grace period, otherwise hand the row back.

Celery's warm shutdown (SIGTERM to the main process) already waits for the task in hand. Two things
are added here. The main process forwards SIGTERM to the pool children holding a task, so a child learns of
the shutdown however the signal was sent (`kill <pid>`, `docker stop`, systemd's control-group kill).
A child busy grading then gets `grace_s` seconds to finish; after that it puts its row back in the
queue as a new attempt (podium.core.states.requeue, not counted as a retry) and exits, instead of being
SIGKILLed by the supervisor with the row left running until its lease runs out.

Idle children ignore SIGTERM (a process-group SIGTERM from systemd reaches them too): Celery's warm
shutdown stops them cleanly, whereas a child that dies mid-shutdown is replaced by billiard, the
replacement never gets its stop sentinel, and the main process waits for it forever. For the same
reason children watch a flag shared with the main process and leave once it is shutting down and
they hold nothing (the replacement of a child that handed its job back and exited).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

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

        billiard replaces any SIGTERM handler set in worker_process_init, so this runs at task time;
        what was there before (SIG_IGN in pool children) still applies whenever no job is in hand.
        """
        self.grace_s = grace_seconds() if grace_s is None else grace_s
        current = signal.getsignal(signal.SIGTERM)
        if current != self._on_sigterm:
            self._previous = current
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def busy(self, hand_back: Callable[[], None]) -> _Busy:
        """Context manager around one job; hand_back() runs if shutdown's grace ends before the job does."""
        return _Busy(self, hand_back)

    def _on_sigterm(self, signum, frame) -> None:
        with self._lock:
            hand_back = self._hand_back
            if hand_back is None:
                # Nothing in hand: Celery's warm shutdown stops this child cleanly. Dying here would make
                # billiard start a replacement in the middle of the shutdown (see watch_flag).
                if callable(self._previous):
                    self._previous(signum, frame)
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


_flag = None  # shared with the pool children: 1 once the main process is shutting down
WATCH_S = 0.5


def ignore_sigterm_until_busy() -> None:
    """In a new pool child: SIGTERM is ignored while idle (billiard keeps SIG_IGN); install() takes over per task."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def prepare_flag() -> None:
    """Create the shared shutdown flag in the Celery main process, before it forks its pool."""
    global _flag
    from multiprocessing.sharedctypes import RawValue
    _flag = RawValue("b", 0)


def raise_flag() -> None:
    """Tell the pool children that the main process is shutting down."""
    if _flag is not None:
        _flag.value = 1


# A real-time signal: billiard's after_fork hands every classic termination signal (SIGHUP, SIGUSR1, SIGUSR2,
# SIGALRM, ...) to its own handler, which exits with the signal's number as its status.
LEAVE_SIGNAL = signal.SIGRTMIN + 3


def _waiting_for_a_job(frame) -> bool:
    """Whether the main thread, interrupted at frame, is inside billiard's wait for the next job."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "receive" and "billiard" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def _leave_if_idle(signum, frame) -> None:
    # Raised where billiard raises on its own stop sentinel (SystemExit in the wait for a job), so the child
    # unwinds, releases the pool queue's lock and exits 0. A job that arrived meanwhile is left alone: the
    # watch asks again once it is done.
    if _flag is not None and _flag.value and state._hand_back is None and _waiting_for_a_job(frame):
        raise SystemExit(0)


def watch_flag() -> None:
    """In a pool child: leave as soon as the main process shuts down and no job is in hand."""
    if _flag is None:
        return
    # Installed here, in worker_process_init: Celery and billiard reset only their own termination signals.
    signal.signal(LEAVE_SIGNAL, _leave_if_idle)
    main = threading.main_thread().ident

    def run():
        while signal.getsignal(LEAVE_SIGNAL) is _leave_if_idle:  # not once the process is on its way out
            time.sleep(WATCH_S)
            if _flag.value and state._hand_back is None:
                # To the main thread, so that its wait for a job is interrupted and the handler sees where it
                # stands. A signal, not os._exit from this thread: os._exit could leave the pool queue's lock
                # taken and the main process hung. billiard's SIGHUP handler would do, but exits with status
                # 1, which Celery logs as an ERROR on every clean stop.
                signal.pthread_kill(main, LEAVE_SIGNAL)

    threading.Thread(target=run, name="shutdown-watch", daemon=True).start()


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
