"""The `podium` command line (click): server verbs work on the configured database, client verbs on the REST API.

Shell completion: `eval "$(_PODIUM_COMPLETE=bash_source podium)"` (zsh_source, fish_source for other shells).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from podium.core.config import Settings


def _settings() -> Settings:
    return Settings.from_env()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Grading service for classroom CNN mini-challenges."""


@cli.command()
@click.option("--port", type=int, default=5000, show_default=True)
def demo(port: int) -> int:
    """Run everything on this machine (SQLite, one worker)."""
    from podium.cli.demo import default_settings, run
    return run(default_settings(), port=port)


@cli.command()
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
def serve(port: int, host: str, workers: int) -> None:
    """Run the web server."""
    from podium.cli.admin import require_database
    from podium.cli.processes import serve as run_server
    require_database(_settings(), connect=False)
    run_server(_settings(), host=host, port=port, workers=workers)


@cli.command()
@click.option("--queues", help="comma-separated queues (default: PODIUM_QUEUES, else this device's queue and 'podium')")
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--hostname")
def worker(queues: str | None, concurrency: int, hostname: str | None) -> None:
    """Run a grading worker."""
    from podium.cli.admin import require_database
    from podium.cli.processes import worker as run_worker
    require_database(_settings(), connect=False)
    run_worker(_settings(), queues=queues, concurrency=concurrency, hostname=hostname)


@cli.command()
@click.option("--interval", type=float, default=15.0, show_default=True, help="seconds between reaper runs")
def beat(interval: float) -> None:
    """Run the periodic reaper."""
    from podium.cli.processes import beat as run_beat
    run_beat(_settings(), interval_s=interval)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply every migration to the configured database."""
    from podium.cli.admin import db_upgrade
    db_upgrade(_settings())
    click.echo("database is up to date")


@cli.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["student", "instructor"]), default="student", show_default=True)
@click.option("--password")
def user_add(name: str, role: str, password: str | None) -> None:
    """Create a user (a password must meet the same policy as on the registration page)."""
    from podium.cli.admin import add_user
    from podium.server.passwords import WeakPassword, check_password
    if password is not None:
        try:
            check_password(password, name)
        except WeakPassword as exc:
            raise click.UsageError(str(exc))
    add_user(_settings(), name, role, password=password)
    click.echo(f"created {role} {name}")


@cli.command()
@click.argument("name")
def token(name: str) -> None:
    """Issue an API token for a user."""
    from podium.cli.admin import new_token
    click.echo(new_token(_settings(), name))


@cli.command()
@click.argument("dir", metavar="DIR")
def backup(dir: str) -> int | None:
    """Write a consistent snapshot of the database and every blob it refers to into DIR (while Podium runs)."""
    from podium.cli.admin import require_database
    from podium.core.backup import BackupError
    from podium.core.backup import backup as run_backup
    require_database(_settings())
    try:
        report = run_backup(_settings(), Path(dir))
    except BackupError as exc:
        click.echo(f"podium backup: {exc}", err=True)
        return 2
    click.echo(f"backed up {report.submissions} submissions and {report.blobs} blobs ({report.bytes} bytes) to {dir}")
    return None


@cli.command()
@click.argument("dir", metavar="DIR")
def restore(dir: str) -> int | None:
    """Restore a backup from DIR into an empty data dir (PODIUM_DATA_DIR)."""
    from podium.core.backup import BackupError
    from podium.core.backup import restore as run_restore
    try:
        report = run_restore(_settings(), Path(dir))
    except BackupError as exc:
        click.echo(f"podium restore: {exc}", err=True)
        return 2
    click.echo(f"restored {report.submissions} submissions and {report.blobs} blobs from {dir}")
    return None


@cli.group()
def challenge() -> None:
    """Manage challenges."""


@challenge.command("add")
@click.argument("dir", metavar="DIR")
@click.option("--publish", is_flag=True, help="show it to students at once (otherwise it is a draft)")
@click.option("--replace", is_flag=True, help="update an existing challenge with the same slug (its state is kept)")
def challenge_add(dir: str, publish: bool, replace: bool) -> int | None:
    """Add a challenge from a bundle folder or zip: a draft, seen only by instructors, unless --publish."""
    from podium.cli.admin import add_challenge
    from podium.core.bundle.spec import BundleError
    notes: list[str] = []
    try:
        slug = add_challenge(_settings(), Path(dir), replace=replace, publish=publish, notes=notes)
    except BundleError as exc:
        click.echo(f"bundle refused: {exc}", err=True)
        return 2
    for note in notes:
        click.echo(note)
    if publish:
        click.echo(f"published challenge {slug}: students see it and may upload")
    elif replace:
        click.echo(f"updated challenge {slug}; its state is kept (`podium challenge publish {slug}` publishes it)")
    else:
        click.echo(f"added challenge {slug} as a draft: only instructors see it (they may upload to try it); "
                   f"`podium challenge publish {slug}` shows it to students")
    return None


def _move(slug: str, action: str) -> None:
    from podium.cli.admin import challenge_state
    from podium.server.lifecycle import EXPLAINED
    state, changed = challenge_state(_settings(), slug, action)
    click.echo(f"challenge {slug} {'is now' if changed else 'was already'} {EXPLAINED[state]}")


@challenge.command("publish")
@click.argument("slug")
def challenge_publish(slug: str) -> None:
    """Publish a challenge: students see it and may upload."""
    _move(slug, "publish")


@challenge.command("unpublish")
@click.argument("slug")
def challenge_unpublish(slug: str) -> None:
    """Make a challenge a draft again: only instructors see it."""
    _move(slug, "unpublish")


@challenge.command("archive")
@click.argument("slug")
def challenge_archive(slug: str) -> None:
    """Archive a challenge: unlisted and closed to uploads; its leaderboard and submissions are kept."""
    _move(slug, "archive")


@cli.command()
@click.argument("model")
@click.option("--challenge", "slug", required=True, help="the challenge's slug")
@click.option("--samples", help="a local .npz with x to use instead of the server's public samples")
def check(model: str, slug: str, samples: str | None) -> int | None:
    """Check a model locally with the grader's checks."""
    from podium.cli.checking import check_against_challenge
    found = check_against_challenge(Path(model), slug, samples_path=samples)
    for line in found.costs:
        click.echo(f"{model}: {line}")
    problems = found.problems
    if problems:
        click.echo(f"{model}: {len(problems)} problem(s) found")
        for p in problems:
            click.echo(f"  - {p}")
        return 1
    click.echo(f"{model}: OK, ready to submit to {slug}")
    return None


@cli.command()
@click.argument("model")
@click.option("--challenge", "slug", required=True, help="the challenge's slug")
@click.option("--wait", is_flag=True, help="wait until scored and print score and rank")
def submit(model: str, slug: str, wait: bool) -> int | None:
    """Upload a model."""
    from podium.cli.client import PodiumClient, wait_for
    client = PodiumClient()
    sub = client.submit(Path(model), slug)
    click.echo(f"submission {sub['id']} {sub['status']}")
    if not wait:
        return None
    sub = wait_for(client, sub["id"])
    if sub["status"] == "failed":
        click.echo(f"failed: {sub['error']}")
        return 1
    rank = sub.get("rank")
    click.echo(f"scored: public {sub['public_score']:.4f}" + (f", rank {rank}" if rank else ""))
    return None


@cli.command()
@click.argument("slug")
def leaderboard(slug: str) -> None:
    """Print a leaderboard."""
    from podium.cli.client import PodiumClient, format_leaderboard
    click.echo(format_leaderboard(PodiumClient().leaderboard(slug)))


@cli.command()
@click.argument("slug")
@click.argument("dir", metavar="DIR")
@click.option("--framework", type=click.Choice(["pytorch", "keras"]), default="pytorch", show_default=True,
              help="pytorch: exports torch.export (.pt2); keras: Keras 3 on its torch backend, exports ONNX")
def starter(slug: str, dir: str, framework: str) -> None:
    """Download a challenge's starter kit."""
    from podium.cli.client import PodiumClient, extract_starter
    names = extract_starter(PodiumClient().download(slug, "starter.zip"), Path(dir), framework)
    click.echo(f"{framework} starter kit for {slug} in {dir}: {', '.join(sorted(names))}")


@cli.group()
def lti() -> None:
    """LMS integration (LTI 1.3): platforms and the tool's key."""


@lti.command("add-platform")
@click.option("--issuer", required=True, help="the platform's issuer (iss), e.g. https://canvas.instructure.com")
@click.option("--client-id", required=True, help="the client id the LMS gave Podium")
@click.option("--deployment-id", required=True, help="the deployment id (repeat the command to add more)")
@click.option("--login-url", required=True, help="the platform's OIDC authorization endpoint")
@click.option("--token-url", required=True, help="the platform's OAuth 2 token endpoint")
@click.option("--jwks-url", required=True, help="the platform's public keys (JWKS)")
@click.option("--course", "course", metavar="CODE", help="Podium course (join code) that launches enrol into")
@click.option("--frame-origin", "frame_origins", multiple=True, metavar="ORIGIN",
              help="origin allowed to frame Podium (default: the issuer's and login URL's; Canvas: your school's)")
@click.option("--base-url", envvar="PODIUM_PUBLIC_URL", default="http://127.0.0.1:5000", show_default=True,
              help="Podium's public URL, for the URLs printed (PODIUM_PUBLIC_URL)")
def lti_add_platform(issuer, client_id, deployment_id, login_url, token_url, jwks_url, course, frame_origins,
                     base_url) -> None:
    """Register an LMS and print the URLs to paste into it."""
    from podium.cli.lti import add_platform
    for line in add_platform(_settings(), base_url, issuer=issuer, client_id=client_id, deployment_id=deployment_id,
                             login_url=login_url, token_url=token_url, jwks_url=jwks_url, course=course,
                             frame_origins=list(frame_origins) or None):
        click.echo(line)


@lti.command("list")
def lti_list() -> None:
    """List registered platforms (id, issuer, client id, deployments, course, frame origins)."""
    from podium.cli.lti import list_platforms
    lines = list_platforms(_settings())
    click.echo("\n".join(lines) if lines else "no platform registered")


@lti.command("remove")
@click.argument("platform_id", type=int)
def lti_remove(platform_id: int) -> int | None:
    """Remove a platform registration by id."""
    from podium.cli.lti import remove_platform
    if not remove_platform(_settings(), platform_id):
        click.echo(f"no platform {platform_id}", err=True)
        return 1
    click.echo(f"removed platform {platform_id}")
    return None


@lti.command("rotate-key")
def lti_rotate_key() -> None:
    """Sign with a new tool key from now on (the old one stays published for two days)."""
    from podium.cli.lti import rotate_key
    click.echo(f"new tool key {rotate_key(_settings())}")


def parse(argv: list[str]) -> tuple[str, dict]:
    """The verb (e.g. "db upgrade") and the parameters argv names, without running it; click.UsageError if invalid."""
    words, params, group, args = [], {}, cli, list(argv)
    ctx = group.make_context("podium", args)
    while isinstance(group, click.Group):
        name, command, args = group.resolve_command(ctx, ctx._protected_args + ctx.args)
        words.append(name)
        ctx = command.make_context(name, args, parent=ctx)
        params.update(ctx.params)
        group = command
    return " ".join(words), params


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: the verb's exit code; 2 with a one-line message on a usage or client error."""
    from sqlalchemy.exc import OperationalError

    from podium.cli.client import ClientError
    from podium.core.migrate import NoDatabase
    args = sys.argv[1:] if argv is None else argv
    try:
        return cli.main(args, prog_name="podium", standalone_mode=False) or 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (ClientError, ValueError, FileNotFoundError, NoDatabase) as exc:
        click.echo(f"podium {_verb(args)}: {exc}", err=True)
        return 2
    except OperationalError as exc:  # the database went away mid-command: one line, never a traceback
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        click.echo(f"podium {_verb(args)}: database error: {reason}; check PODIUM_DATA_DIR / PODIUM_DATABASE_URL, "
                   "or run `podium db upgrade`", err=True)
        return 2


def _verb(args: list[str]) -> str:
    """The verb's words ("challenge add"), for one-line error messages."""
    try:
        return parse(args)[0]
    except (click.ClickException, click.exceptions.Exit):
        return next((a for a in args if not a.startswith("-")), "")


if __name__ == "__main__":
    sys.exit(main())
