"""`podium demo`: the embedded set-up on one machine (SQLite, SQLite broker, web + worker; the worker reaps)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from podium.cli import admin
from podium.core.config import Settings

DEMO_INSTRUCTOR = ("instructor", "grade-the-models")
DEMO_STUDENT = ("student", "train-a-small-cnn")
DEMO_COURSE = "Demo course"
TOKEN_FILE = "demo-student-token"  # in the data dir: the student's token, so a restart prints the same one


def prepare(settings: Settings, log=print) -> dict:
    """Migrate, build and publish the bundled challenges, make sure of the demo accounts; returns what to print."""
    from podium.challenges.build import build_all
    admin.db_upgrade(settings)
    bundles_dir = settings.data_dir / "bundles"
    log(f"building bundled challenges in {bundles_dir} ...")
    only = os.environ.get("PODIUM_DEMO_CHALLENGES")  # e.g. "digits", to start faster
    bundles = build_all(bundles_dir, names=only.split(",") if only else None)
    slugs = [admin.add_challenge(settings, path, replace=True, publish=True) for path in bundles]
    join_code, token = demo_accounts(settings)
    return {"slugs": slugs, "bundles": bundles, "join_code": join_code, "student_token": token,
            "token_file": settings.data_dir / TOKEN_FILE}


def demo_accounts(settings: Settings) -> tuple[str, str]:
    """The demo course, its instructor and its enrolled student (kept across restarts); (join code, student token).

    The student's token is kept in the data dir (TOKEN_FILE, readable by its owner only) and printed again
    while it still works; accounts made by an older demo with the password equal to the name get the
    current demo passwords, which meet the password policy.
    """
    from sqlalchemy import select

    from podium.core.db import Database
    from podium.core.models import Course, User
    from podium.server.auth import create_user, hash_password, issue_token, user_for_token, verify_password
    from podium.server.courses import create_course
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            course = s.scalar(select(Course).where(Course.name == DEMO_COURSE)) or create_course(s, DEMO_COURSE)
            users = {}
            for (name, password), role in ((DEMO_INSTRUCTOR, "instructor"), (DEMO_STUDENT, "student")):
                user = s.scalar(select(User).where(User.username == name))
                if user is None:
                    user = create_user(s, name, role, password=password)
                elif verify_password(user, name):  # the old demo's password ("student"/"student")
                    user.password_hash = hash_password(password)
                users[name] = user
            student = users[DEMO_STUDENT[0]]
            if student.course_id is None:
                student.course_id = course.id
            path = settings.data_dir / TOKEN_FILE
            kept = path.read_text().strip() if path.is_file() else ""
            holder = user_for_token(s, kept) if kept else None
            if holder is not None and holder.id == student.id:
                return course.join_code, kept
            token = issue_token(s, student, "demo")
            s.flush()
            path.touch(mode=0o600)
            path.write_text(token + "\n")
            return course.join_code, token
    finally:
        db.dispose()


def _spawn(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "podium.cli", *args], env=env, start_new_session=True)


def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web server did not answer at {url}")


class Stop(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop as on Ctrl-C."""


def stop_on_signals() -> None:
    """SIGTERM (systemd, `kill`, `timeout`) and SIGHUP (a closing terminal) stop the demo as Ctrl-C does."""
    def handler(signum, _frame):
        raise Stop(signal.Signals(signum).name)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    # Python leaves SIGINT ignored when it starts so (a script's `cmd &`, nohup under some shells): the demo
    # stops on it all the same, as gunicorn and Celery do.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def stop(procs: list[subprocess.Popen], timeout_s: float | None = None) -> None:
    """SIGTERM each process we started, then SIGKILL its group if anything of it outlives the shutdown grace.

    Only the main processes get the SIGTERM: gunicorn's master and Celery's main process stop their own
    children in order. Signalled directly, Celery's pool child would die under its main process, which logs
    "ERROR/MainProcess Process 'ForkPoolWorker-1' ... exited with 'exitcode 1'" on a clean stop.
    """
    from podium.cli.baseline import stop_training
    from podium.worker.shutdown import grace_seconds
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut the stop short
        signal.signal(sig, signal.SIG_IGN)
    stop_training()
    timeout_s = grace_seconds() + 5 if timeout_s is None else timeout_s
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(p.pid, signal.SIGKILL)
            p.wait()
    for p in procs:  # whatever of a group is left once its main process is gone
        _kill_group(p.pid, signal.SIGKILL)


def _baselines(settings: Settings, url: str, bundles: list[Path]) -> None:
    """Train and submit the starter-kit baselines in the background, so the demo is usable at once."""
    from podium.cli.baseline import submit_baselines
    try:
        scores = submit_baselines(settings, url, bundles)
        print("baseline rows: " + ", ".join(f"{slug} {score:.4f}" for slug, score in scores.items()), flush=True)
    except Exception as exc:  # the demo still works without baseline rows
        print(f"could not add baseline rows: {exc}", file=sys.stderr, flush=True)


def run(settings: Settings, port: int = 5000) -> int:
    """Prepare, start web + worker, print how to use them, and stop everything on Ctrl-C, SIGTERM or SIGHUP."""
    stop_on_signals()
    procs: list[subprocess.Popen] = []
    try:
        return _run(settings, port, procs)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stop(procs)


def _run(settings: Settings, port: int, procs: list[subprocess.Popen]) -> int:
    info = prepare(settings)
    env = dict(os.environ, PODIUM_DATA_DIR=str(settings.data_dir), PODIUM_DATABASE_URL=settings.database_url,
               PODIUM_BROKER_URL=settings.broker_url)
    url = f"http://127.0.0.1:{port}"
    # The one embedded worker takes every queue, GPU-only challenges included, and does the reaper's rounds.
    procs.append(_spawn(["serve", "--port", str(port), "--workers", "1"], env))
    procs.append(_spawn(["worker", "--queues", "gpu,cpu,podium,lti"], env))
    _wait_http(f"{url}/healthz")
    print(f"""
Podium is running at {url}
  instructor login: {DEMO_INSTRUCTOR[0]} / {DEMO_INSTRUCTOR[1]}    student login: {DEMO_STUDENT[0]} / {DEMO_STUDENT[1]}
  student token:    {info['student_token']}   (kept in {info['token_file']}: the same on every start)
  join code:        {info['join_code']}   (new students register at {url}/register)
  challenges:       {', '.join(info['slugs'])}

Try, in another terminal:
  export PODIUM_URL={url} PODIUM_TOKEN={info['student_token']}
  .venv/bin/podium starter digits ./digits-kit && cd digits-kit && ../.venv/bin/python train.py
  ../.venv/bin/podium submit model.pt2 --challenge digits --wait

Press Ctrl-C to stop.""", flush=True)
    threading.Thread(target=_baselines, args=(settings, url, info["bundles"]), daemon=True).start()
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    print("a Podium process exited; stopping the others", file=sys.stderr)
    return 1


def default_settings() -> Settings:
    """The demo's settings: the environment's, with the data dir created."""
    settings = Settings.from_env()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return settings
