"""`podium demo`: the embedded set-up on one machine (SQLite, SQLite broker, web + worker + beat)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from podium import admin
from podium.config import Settings

DEMO_INSTRUCTOR = ("instructor", "instructor")
DEMO_STUDENT = ("student", "student")


def prepare(settings: Settings, log=print) -> dict:
    """Migrate, build and publish the bundled challenges, create the demo accounts; returns tokens."""
    from challenges.build import build_all
    admin.db_upgrade(settings)
    bundles_dir = settings.data_dir / "bundles"
    log(f"building bundled challenges in {bundles_dir} ...")
    only = os.environ.get("PODIUM_DEMO_CHALLENGES")  # e.g. "digits", to start faster
    bundles = build_all(bundles_dir, names=only.split(",") if only else None)
    slugs = [admin.add_challenge(settings, path, replace=True) for path in bundles]
    for name, password in (DEMO_INSTRUCTOR, DEMO_STUDENT):
        try:
            admin.add_user(settings, name, name, password=password)
        except ValueError:
            pass  # already there from an earlier demo run
    return {"slugs": slugs, "bundles": bundles, "join_code": _demo_course(settings), "student_token": admin.new_token(settings, DEMO_STUDENT[0], "demo"),
            "instructor_token": admin.new_token(settings, DEMO_INSTRUCTOR[0], "demo")}


def _demo_course(settings: Settings) -> str:
    """The demo course's join code (created on the first run), so classmates can register."""
    from sqlalchemy import select

    from server.courses import create_course
    from server.db import Database
    from server.models import Course
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            course = s.scalar(select(Course).where(Course.name == "Demo course"))
            return (course or create_course(s, "Demo course")).join_code
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


def stop(procs: list[subprocess.Popen], timeout_s: float = 20) -> None:
    """SIGTERM every process group, then SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _baselines(settings: Settings, url: str, bundles: list[Path]) -> None:
    """Train and submit the starter-kit baselines in the background, so the demo is usable at once."""
    from podium.baseline import submit_baselines
    try:
        scores = submit_baselines(settings, url, bundles)
        print("baseline rows: " + ", ".join(f"{slug} {score:.4f}" for slug, score in scores.items()), flush=True)
    except Exception as exc:  # the demo still works without baseline rows
        print(f"could not add baseline rows: {exc}", file=sys.stderr, flush=True)


def run(settings: Settings, port: int = 5000) -> int:
    """Prepare, start web + worker + beat, print how to use them, and stop everything on Ctrl-C."""
    info = prepare(settings)
    env = dict(os.environ, PODIUM_DATA_DIR=str(settings.data_dir), PODIUM_DATABASE_URL=settings.database_url,
               PODIUM_BROKER_URL=settings.broker_url)
    url = f"http://127.0.0.1:{port}"
    # The one embedded worker takes every queue, GPU-only challenges included.
    procs = [_spawn(["serve", "--port", str(port), "--workers", "1"], env),
             _spawn(["worker", "--queues", "gpu,cpu,podium"], env), _spawn(["beat"], env)]
    try:
        _wait_http(f"{url}/healthz")
        print(f"""
Podium is running at {url}
  instructor login: {DEMO_INSTRUCTOR[0]} / {DEMO_INSTRUCTOR[1]}    student login: {DEMO_STUDENT[0]} / {DEMO_STUDENT[1]}
  student token:    {info['student_token']}
  join code:        {info['join_code']}   (new students register at {url}/register)
  challenges:       {', '.join(info['slugs'])}

Try, in another terminal:
  export PODIUM_URL={url} PODIUM_TOKEN={info['student_token']}
  .venv/bin/podium starter digits ./digits-kit && cd digits-kit && ../.venv/bin/python train.py
  ../.venv/bin/podium submit model.pt --challenge digits --wait

Press Ctrl-C to stop.""", flush=True)
        threading.Thread(target=_baselines, args=(settings, url, info["bundles"]), daemon=True).start()
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a Podium process exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        stop(procs)


def default_settings() -> Settings:
    """The demo's settings: the environment's, with the data dir created."""
    settings = Settings.from_env()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return settings
