"""The `podium` command line: server verbs work on the configured database, client verbs on the REST API."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from podium.config import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _cmd_demo(a):
    from podium.demo import default_settings, run
    return run(default_settings(), port=a.port)


def _cmd_serve(a):
    from podium.processes import serve
    serve(_settings(), host=a.host, port=a.port, workers=a.workers)


def _cmd_worker(a):
    from podium.processes import worker
    worker(_settings(), queues=a.queues, concurrency=a.concurrency, hostname=a.hostname)


def _cmd_beat(a):
    from podium.processes import beat
    beat(_settings(), interval_s=a.interval)


def _cmd_db(a):
    from podium.admin import db_upgrade
    db_upgrade(_settings())
    print("database is up to date")


def _cmd_user(a):
    from podium.admin import add_user
    add_user(_settings(), a.name, a.role, password=a.password)
    print(f"created {a.role} {a.name}")


def _cmd_token(a):
    from podium.admin import new_token
    print(new_token(_settings(), a.name))


def _cmd_challenge(a):
    from podium.admin import add_challenge
    from podium.bundle import BundleError
    try:
        slug = add_challenge(_settings(), Path(a.dir), replace=a.replace)
    except BundleError as exc:
        print(f"bundle refused: {exc}", file=sys.stderr)
        return 2
    print(f"published challenge {slug}")


def _cmd_check(a):
    from podium.checking import check_against_challenge
    problems = check_against_challenge(Path(a.model), a.challenge, samples_path=a.samples)
    if problems:
        print(f"{a.model}: {len(problems)} problem(s) found")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"{a.model}: OK, ready to submit to {a.challenge}")


def _cmd_submit(a):
    from podium.client import PodiumClient, wait_for
    client = PodiumClient()
    sub = client.submit(Path(a.model), a.challenge)
    print(f"submission {sub['id']} {sub['status']}", flush=True)
    if not a.wait:
        return
    sub = wait_for(client, sub["id"])
    if sub["status"] == "failed":
        print(f"failed: {sub['error']}")
        return 1
    rank = sub.get("rank")
    print(f"scored: public {sub['public_score']:.4f}" + (f", rank {rank}" if rank else ""))


def _cmd_leaderboard(a):
    from podium.client import PodiumClient, format_leaderboard
    print(format_leaderboard(PodiumClient().leaderboard(a.slug)))


def _cmd_starter(a):
    from podium.client import PodiumClient, extract_starter
    names = extract_starter(PodiumClient().download(a.slug, "starter.zip"), Path(a.dir))
    print(f"starter kit for {a.slug} in {a.dir}: {', '.join(sorted(names))}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb of DESIGN.md."""
    p = argparse.ArgumentParser(prog="podium", description="Grading service for classroom CNN mini-challenges.")
    sub = p.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("demo", help="run everything on this machine (SQLite, one worker)")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=_cmd_demo)
    s = sub.add_parser("serve", help="run the web server")
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=_cmd_serve)
    s = sub.add_parser("worker", help="run a grading worker")
    s.add_argument("--queues", help="comma-separated queues (default: PODIUM_QUEUES, else this device's queue and 'podium')")
    s.add_argument("--concurrency", type=int, default=1)
    s.add_argument("--hostname")
    s.set_defaults(func=_cmd_worker)
    s = sub.add_parser("beat", help="run the periodic reaper")
    s.add_argument("--interval", type=float, default=15.0, help="seconds between reaper runs")
    s.set_defaults(func=_cmd_beat)
    s = sub.add_parser("db", help="database schema")
    s.add_argument("action", choices=["upgrade"])
    s.set_defaults(func=_cmd_db)
    s = sub.add_parser("user", help="manage users")
    s.add_argument("action", choices=["add"])
    s.add_argument("name")
    s.add_argument("--role", choices=["student", "instructor"], default="student")
    s.add_argument("--password")
    s.set_defaults(func=_cmd_user)
    s = sub.add_parser("token", help="issue an API token for a user")
    s.add_argument("name")
    s.set_defaults(func=_cmd_token)
    s = sub.add_parser("challenge", help="manage challenges")
    s.add_argument("action", choices=["add"])
    s.add_argument("dir", help="bundle folder or zip")
    s.add_argument("--replace", action="store_true", help="update an existing challenge with the same slug")
    s.set_defaults(func=_cmd_challenge)
    s = sub.add_parser("check", help="check a model locally with the grader's checks")
    s.add_argument("model")
    s.add_argument("--challenge", required=True)
    s.add_argument("--samples", help="a local .npz with x to use instead of the server's public samples")
    s.set_defaults(func=_cmd_check)
    s = sub.add_parser("submit", help="upload a model")
    s.add_argument("model")
    s.add_argument("--challenge", required=True)
    s.add_argument("--wait", action="store_true", help="wait until scored and print score and rank")
    s.set_defaults(func=_cmd_submit)
    s = sub.add_parser("leaderboard", help="print a leaderboard")
    s.add_argument("slug")
    s.set_defaults(func=_cmd_leaderboard)
    s = sub.add_parser("starter", help="download a challenge's starter kit")
    s.add_argument("slug")
    s.add_argument("dir")
    s.set_defaults(func=_cmd_starter)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    from podium.client import ClientError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ClientError, ValueError, FileNotFoundError) as exc:
        print(f"podium {args.verb}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
