"""Faults with real processes: killed and stopped workers, a broker and a database that go away, duplicate messages.

Each test starts its own web server, worker(s), private redis-server or database, so the shared services
are never disturbed. After each, no scoring process, upload temp file or worker process may be left behind.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from sqlalchemy import func, update
from sqlalchemy import select as sql_select

from podium.core import states
from podium.core.celery_app import SCORE_TASK, create_celery
from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission
from podium.core.split import public_mask
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, slow_model, small_cnn
from tests.support.processes import assert_gone, descendants, stop_leaving_nothing

USERS = {"ann": "student", "prof": "instructor"}
FAST_ENV = {"PODIUM_LEASE_S": 3, "PODIUM_REAPER_LOST_AFTER_S": 3}


# --- helpers -----------------------------------------------------------------------------------------------

def class0_scores(bundle: Path) -> tuple[float, float]:
    """Public and private accuracy of a model that always answers class 0 (a Sleeper)."""
    with np.load(bundle / "data" / "test.npz") as npz:
        y = npz["y"]
    mask = public_mask(y, 0.5, 3)
    return float(np.mean(y[mask] == 0)), float(np.mean(y[~mask] == 0))


def worker_tree(stack, name: str = "worker", timeout_s: float = 60) -> set[int]:
    """The worker's processes once its scoring zygote is up (main, pool child, zygote, maybe a scoring child)."""
    main = stack.procs[name].pid
    return live.wait_until(lambda: (d := descendants(main)) and len(d) >= 2 and {main} | d, timeout_s,
                           f"worker {name} did not start; see {stack.logs}/{name}.log", 0.2)


def assert_no_upload_temp_files(settings) -> None:
    tmp = settings.blob_dir / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), list(tmp.iterdir())


def db_row(settings, sub_id: int) -> tuple[Submission, int]:
    """The submission row and how many Score rows it has, read straight from the database."""
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            n = s.scalar(sql_select(func.count()).select_from(Score).where(Score.submission_id == sub_id))
            return s.get(Submission, sub_id), n
    finally:
        db.dispose()


def wait_status(api: live.Api, sub_id: int, status: str, timeout_s: float = 60) -> dict:
    def check():
        sub = api.get(f"/submissions/{sub_id}").json()
        return sub if sub.get("status") == status else None
    return live.wait_until(check, timeout_s, f"submission {sub_id} never became {status}", 0.1)


def make_stack(tmp: Path, database_url=None, broker_url=None) -> live.Stack:
    bundle = write_tiny_bundle(tmp / "bundle-tiny")
    settings = live.settings_for(tmp / "var", database_url, broker_url)
    stack = live.Stack(settings)
    stack.tokens = live.prepare_database(settings, [bundle], USERS)
    db = Database(settings.database_url)
    with db.session() as s:  # these tests keep many submissions of one student in flight
        s.execute(update(Challenge).values(max_queued=1000))
    db.dispose()
    stack.bundle = bundle
    stack.start_web()
    return stack


def require_postgres():
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")


class TcpProxy:
    """A TCP forwarder to the test Postgres that the test can cut and restore: the database 'goes away'."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = live.free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it; close alone would not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            a.close()
            b.close()


# --- SIGKILL in the middle of scoring -----------------------------------------------------------------------

def _kill_mid_scoring(stack: live.Stack, worker_env: dict) -> None:
    ann = live.Api(stack.url, stack.tokens["ann"])
    tree = worker_tree(stack)
    resp = ann.submit("tiny", slow_model(6))
    assert resp.status_code == 202, resp.text
    sub_id = resp.json()["id"]
    wait_status(ann, sub_id, "running")
    # The scoring child exists: zygote plus its fork below the pool child.
    live.wait_until(lambda: len(descendants(stack.procs["worker"].pid)) >= 3, 10, "no scoring child appeared")
    tree |= descendants(stack.procs["worker"].pid)
    time.sleep(1.0)
    stack.kill("worker", signal.SIGKILL)
    assert_gone(tree)  # the zygote sees its worker go and takes the scoring child with it
    stack.start_worker(**worker_env)
    # Generous: the new worker warms a zygote (torch, torch.export, ONNX Runtime) before it can score.
    sub = ann.wait_finished(sub_id, timeout_s=180)
    expected_public, expected_private = class0_scores(stack.bundle)
    assert sub["status"] == "scored", (sub, stack.log("worker"))
    assert sub["public_score"] == pytest.approx(expected_public, abs=1e-12)
    row, n_scores = db_row(stack.settings, sub_id)
    assert n_scores == 1
    assert row.infra_retries <= 1
    prof = live.Api(stack.url, stack.tokens["prof"])
    assert prof.get(f"/submissions/{sub_id}").json()["private_score"] == pytest.approx(expected_private, abs=1e-12)
    return row


@pytest.mark.slow
def test_sigkill_on_sqlite_broker_reaper_recovers(tmp_path):
    """Embedded broker: a fetched message never comes back, so the reaper sees the lease run out and re-enqueues."""
    stack = make_stack(tmp_path)
    try:
        stack.start_worker(**FAST_ENV)
        stack.start_beat(interval=1.0)
        row = _kill_mid_scoring(stack, FAST_ENV)
        assert (row.attempt, row.infra_retries) == (2, 1)  # recovered by the reaper as a new attempt
        assert "worker lost (lease expired)" in stack.log("worker")
    finally:
        stop_leaving_nothing(stack)
        assert_no_upload_temp_files(stack.settings)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_on_redis_visibility_timeout_recovers(tmp_path):
    """Redis: the unacked message returns after the visibility timeout and takes over the row (no reaper running)."""
    require_postgres()
    redis = live.RedisServer(tmp_path / "redis").start()
    env = dict(FAST_ENV, PODIUM_VISIBILITY_TIMEOUT_S=8, PODIUM_REAPER_INTERVAL_S=600)  # the broker alone recovers it
    try:
        with live.fresh_postgres_db() as url:
            stack = make_stack(tmp_path, url, redis.url)
            try:
                stack.start_worker(**env)
                row = _kill_mid_scoring(stack, env)
                assert (row.attempt, row.infra_retries) == (1, 0)  # the same message, delivered again
            finally:
                stop_leaving_nothing(stack)
                assert_no_upload_temp_files(stack.settings)
    finally:
        redis.stop()


# --- duplicates, shutdown ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sqlite_fault_stack(tmp_path_factory):
    """Web on SQLite with the embedded broker; tests start and stop their own workers."""
    stack = make_stack(tmp_path_factory.mktemp("faults"))
    yield stack
    stop_leaving_nothing(stack)
    assert_no_upload_temp_files(stack.settings)


def test_same_task_delivered_twice_scores_once(sqlite_fault_stack):
    """Two workers get the same message at once, and it comes again after the row is scored: one Score row, unchanged."""
    stack = sqlite_fault_stack
    ann = live.Api(stack.url, stack.tokens["ann"])
    resp = ann.submit("tiny", slow_model(2))
    sub_id = resp.json()["id"]
    app = create_celery(stack.settings)
    app.send_task(SCORE_TASK, args=[sub_id, 1], queue="podium")
    app.send_task(SCORE_TASK, args=[sub_id, 1], queue="podium")
    stack.start_worker("w1")
    stack.start_worker("w2")
    try:
        first = ann.wait_finished(sub_id, timeout_s=90)
        assert first["status"] == "scored"
        app.send_task(SCORE_TASK, args=[sub_id, 1], queue="podium")
        app.send_task(SCORE_TASK, args=[sub_id, 2], queue="podium")  # an attempt that never existed
        live.wait_until(lambda: stack.log("w1").count("nothing to do") + stack.log("w2").count("nothing to do")
                        + stack.log("w1").count("graded elsewhere") + stack.log("w2").count("graded elsewhere") >= 4,
                        60, "the duplicate messages were not all consumed")
        row, n_scores = db_row(stack.settings, sub_id)
        assert n_scores == 1
        assert (row.status, row.attempt) == (states.SCORED, 1)
        again = ann.get(f"/submissions/{sub_id}").json()
        assert (again["finished_at"], again["public_score"]) == (first["finished_at"], first["public_score"])
    finally:
        stack.kill("w1", signal.SIGKILL)
        stack.kill("w2", signal.SIGKILL)


def test_sigterm_finishes_the_model_in_hand(sqlite_fault_stack):
    """SIGTERM to the worker's main process only (docker stop, kill <pid>): the running model finishes, then it exits."""
    stack = sqlite_fault_stack
    ann = live.Api(stack.url, stack.tokens["ann"])
    proc = stack.start_worker("wt", PODIUM_SHUTDOWN_GRACE_S=60)
    tree = worker_tree(stack, "wt")
    sub_id = ann.submit("tiny", slow_model(3)).json()["id"]
    wait_status(ann, sub_id, "running")
    tree |= descendants(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(60)
    stack.procs.pop("wt")
    row, n_scores = db_row(stack.settings, sub_id)
    assert row.status == states.SCORED and n_scores == 1, stack.log("wt")
    assert_gone(tree)


def test_sigterm_hands_back_what_cannot_finish_in_time(sqlite_fault_stack):
    """SIGTERM to the whole group (systemd): after the grace period the row goes back to the queue, not counted."""
    stack = sqlite_fault_stack
    ann = live.Api(stack.url, stack.tokens["ann"])
    stack.start_worker("wg", PODIUM_SHUTDOWN_GRACE_S=1)
    tree = worker_tree(stack, "wg")
    sub_id = ann.submit("tiny", slow_model(8)).json()["id"]
    wait_status(ann, sub_id, "running")
    tree |= descendants(stack.procs["wg"].pid)
    t0 = time.monotonic()
    stack.kill("wg", signal.SIGTERM)
    assert time.monotonic() - t0 < 30  # 1 s grace, then Celery's own shutdown (not the 8 s model)
    assert_gone(tree)
    row, _ = db_row(stack.settings, sub_id)
    assert (row.status, row.attempt, row.infra_retries) == (states.QUEUED, 2, 0), stack.log("wg")
    stack.start_worker("wg2")
    try:
        sub = ann.wait_finished(sub_id, timeout_s=90)
        assert sub["status"] == "scored"
        assert db_row(stack.settings, sub_id)[1] == 1
    finally:
        stack.kill("wg2", signal.SIGTERM)


# --- the broker and the database go away --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.postgres
def test_redis_stopped_and_restarted_with_uploads_in_flight(tmp_path):
    """Uploads during a Redis outage answer 202 quickly and stay queued; after it returns every one is scored."""
    require_postgres()
    redis = live.RedisServer(tmp_path / "redis").start()
    try:
        with live.fresh_postgres_db() as url:
            stack = make_stack(tmp_path, url, redis.url)
            try:
                stack.start_worker(**FAST_ENV)
                stack.start_beat(interval=1.0)
                ann = live.Api(stack.url, stack.tokens["ann"])
                models = [scripted_bytes(small_cnn(seed=i, in_shape=(1, 8, 8), num_classes=3)) for i in range(4)]
                models.append(slow_model(4))
                ids = [ann.submit("tiny", m).json()["id"] for m in models]  # the slow one is in hand at the stop
                wait_status(ann, ids[-1], "running")
                ids += [ann.submit("tiny", m).json()["id"] for m in models[:2]]  # waiting in Redis at the stop
                port = redis.port
                redis.stop()
                during = []
                for m in models[:4]:
                    t0 = time.monotonic()
                    resp = ann.submit("tiny", m)
                    during.append(time.monotonic() - t0)
                    assert resp.status_code == 202, resp.text
                    assert resp.json()["status"] == "queued"
                    ids.append(resp.json()["id"])
                assert max(during) < 5, during
                time.sleep(3)
                redis.port = port
                redis.start()
                for sub_id in ids:
                    sub = ann.wait_finished(sub_id, timeout_s=120)
                    assert sub["status"] == "scored", (sub, stack.log("worker"))
                    assert db_row(stack.settings, sub_id)[1] == 1
            finally:
                stop_leaving_nothing(stack)
                assert_no_upload_temp_files(stack.settings)
    finally:
        redis.stop()


@pytest.mark.slow
@pytest.mark.postgres
def test_database_down_web_503_worker_retries(tmp_path):
    """Postgres unreachable: the API answers 503 JSON at once; the worker keeps the message and scores when it returns."""
    require_postgres()
    redis = live.RedisServer(tmp_path / "redis").start()
    pg_host, pg_port = "127.0.0.1", 5432
    try:
        with live.fresh_postgres_db() as url:
            proxy = TcpProxy((pg_host, pg_port)).start()
            proxied = url.replace(f"@{pg_host}:{pg_port}/", f"@127.0.0.1:{proxy.port}/")
            assert proxied != url
            stack = make_stack(tmp_path, proxied, redis.url)
            try:
                ann = live.Api(stack.url, stack.tokens["ann"])
                sub_id = ann.submit("tiny", scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3))).json()["id"]
                proxy.stop()
                for call in (lambda: ann.get(f"/submissions/{sub_id}"),
                             lambda: ann.submit("tiny", b"not read")):
                    t0 = time.monotonic()
                    resp = call()
                    assert time.monotonic() - t0 < 10
                    assert resp.status_code == 503, resp.text
                    assert resp.json()["error"]["code"] == "database_unavailable"
                    assert resp.headers["Retry-After"] == "30"
                stack.start_worker()
                live.wait_until(lambda: "OperationalError" in stack.log("worker"), 60,
                                "the worker never met the database outage")
                time.sleep(2)
                proxy.start()
                sub = ann.wait_finished(sub_id, timeout_s=120)
                assert sub["status"] == "scored", stack.log("worker")
                assert db_row(stack.settings, sub_id)[1] == 1
                assert requests.get(f"{stack.url}/healthz", timeout=5).ok
            finally:
                proxy.start() if proxy._listener is None else None
                stop_leaving_nothing(stack)
                proxy.stop()
    finally:
        redis.stop()
