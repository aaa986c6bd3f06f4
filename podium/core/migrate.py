"""Schema management through Alembic only (`podium db upgrade`)."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError


def alembic_config(database_url: str) -> Config:
    """An Alembic Config pointing at our migrations and this database."""
    cfg = Config()
    # The migrations ship inside the package (podium.migrations), so this works from a wheel in any directory.
    cfg.set_main_option("script_location", str(files("podium.migrations")))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


def autogenerate(database_url: str, message: str) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


class NoDatabase(RuntimeError):
    """The configured database is missing, unreachable or not migrated: the message says what to do."""


def _shown(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def require_database(database_url: str, data_dir_label: str, connect: bool = True) -> None:
    """Raise NoDatabase, in plain words, unless the database exists, answers and has every migration applied.

    data_dir_label is how the caller names the data dir to the person (e.g. "./var (/home/ana/var)").
    With connect=False only a missing SQLite file is refused (long-running servers wait out a database that is down).
    """
    fix = "set PODIUM_DATA_DIR to your data dir or run `podium db upgrade` there"
    if database_url.startswith("sqlite:///") and not Path(database_url[len("sqlite:///"):]).is_file():
        raise NoDatabase(f"no Podium database in {data_dir_label}; {fix}")
    if not connect:
        return
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise NoDatabase(f"cannot open the database {_shown(database_url)}: {reason}; "
                         "check PODIUM_DATABASE_URL (or PODIUM_DATA_DIR)") from None
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    if not current:
        raise NoDatabase(f"no Podium database in {data_dir_label} ({_shown(database_url)} has no Podium tables); {fix}")
    if current != heads:
        raise NoDatabase(f"the database {_shown(database_url)} needs migrations this version of Podium brings; "
                         "run `podium db upgrade`")
