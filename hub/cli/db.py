"""``pingan-hub db upgrade|downgrade|current|history``: the schema's Alembic migrations, for SQLite and PostgreSQL.

The database is the one the hub uses (``PINGAN_DATABASE_URL``, default the SQLite file in
``PINGAN_DATA_DIR``). On PostgreSQL run ``db upgrade`` once before starting (or updating) the
replicas; ``serve`` refuses an outdated PostgreSQL schema rather than race other replicas to migrate.
"""

from __future__ import annotations

from typing import Annotated

import typer

from edge.errors import PinganError
from edge.shared.securefs import private_dir

db_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                     help="The database schema (Alembic migrations).")


def _engine():  # noqa: ANN202 - sqlalchemy Engine, imported lazily
    from hub.cli.main import _fail, _settings
    from hub.store.engine import make_engine

    settings = _settings(mqtt_enabled=False)
    if settings.database_url is None:
        private_dir(settings.data_dir)
    try:
        return make_engine(settings.db_url)
    except Exception as exc:  # noqa: BLE001 - a bad URL or a missing driver is one line, not a traceback
        _fail(f"PINGAN_DATABASE_URL: {exc}")


def _run(action, *args: str) -> None:  # noqa: ANN001 - one of hub.db's functions
    from hub.cli.main import _fail

    engine = _engine()
    try:
        action(engine, *args)
    except PinganError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the server is down, a revision is unknown: say it in one line
        _fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        engine.dispose()


def _where(engine) -> str:  # noqa: ANN001
    return engine.url.render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from hub.store import migrate as db

    def act(engine) -> None:  # noqa: ANN001
        db.upgrade(engine, revision)
        typer.echo(f"{_where(engine)}: at revision {db.current(engine)}")

    _run(act)


@db_app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base (drops everything)")]
              ) -> None:
    """Migrate the schema down to REVISION (``base`` drops every table: data is lost)."""
    from hub.store import migrate as db

    def act(engine) -> None:  # noqa: ANN001
        db.downgrade(engine, revision)
        typer.echo(f"{_where(engine)}: at revision {db.current(engine) or 'base (empty)'}")

    _run(act)


@db_app.command("current")
def current() -> None:
    """The database's revision and the one this hub needs."""
    from hub.store import migrate as db

    def act(engine) -> None:  # noqa: ANN001
        at, want = db.current(engine), db.head()
        typer.echo(f"{_where(engine)}: at {at or 'base (empty)'}; this hub needs {want}"
                   f"{'' if at == want else '  -> run: pingan-hub db upgrade'}")

    _run(act)


@db_app.command("history")
def history() -> None:
    """The revisions, newest first."""
    from hub.store import migrate as db

    for line in db.history():
        typer.echo(line)


@db_app.command("revision")
def revision(message: Annotated[str, typer.Option("--message", "-m", help="What the revision changes")],
             rev_id: Annotated[str | None, typer.Option(help="Revision id, e.g. 0002 (default: a random one)")]
             = None) -> None:
    """For developers: write a new revision with what the models have and the migrations lack.

    Compared against a scratch SQLite database migrated to the newest revision, so no server is
    needed; check the file (and the downgrade) before committing it."""
    import tempfile
    from pathlib import Path

    from alembic import command

    from hub.cli.main import _fail
    from hub.store import migrate as db
    from hub.store.engine import make_engine

    if rev_id and any(line.startswith(f"{rev_id} ") for line in db.history()):
        _fail(f"revision {rev_id} exists already; pick the next id")
    with tempfile.TemporaryDirectory(prefix="pingan-revision-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        try:
            db.upgrade(engine)
            with engine.connect() as conn:
                script = command.revision(db._config(conn), message=message, autogenerate=True, rev_id=rev_id)
        except Exception as exc:  # noqa: BLE001 - e.g. a duplicate revision id: one line
            _fail(f"{type(exc).__name__}: {exc}")
        finally:
            engine.dispose()
    path = getattr(script, "path", script)
    typer.echo(f"wrote {path}")
