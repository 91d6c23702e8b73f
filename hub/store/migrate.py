"""The hub's schema under Alembic: upgrade, downgrade, current, history, and the check at start.

The migrations live in ``hub/store/migrations`` (shipped as package data, so a non-editable install has
them); the Alembic config is built here in code, no alembic.ini. What ``serve`` does at start:

* **SQLite** (one hub box, the file belongs to this one process): upgrade to the newest revision by
  itself, so a district that updates the package keeps its "one command" start.
* **PostgreSQL** (shared by N replicas, possibly of two versions during a rolling update): never
  migrate from a replica. An outdated or empty schema stops the hub with "run pingan-hub db
  upgrade": schema changes there are the operator's deliberate step (backup first, one migrator,
  no replicas racing to ALTER the same table).

A database made by ``create_all`` before migrations existed is adopted by the first revision itself:
it creates only what is missing (tables, indexes, the ``commands.data`` column added later), so
running it over an old database leaves the data alone and records the revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, Engine

from hub.errors import HubError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(HubError):
    """The database schema does not match this version of the hub."""


def all_metadata() -> MetaData:
    """The models' metadata with every table (all in hub/store/schema.py)."""
    from hub.store.schema import metadata

    return metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Autogenerate writes our column types as plain SQLAlchemy types (revisions must not import models)."""
    from hub.store.schema import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _connected(engine: Engine) -> Iterator[Any]:
    from hub.store.engine import WRITE_OPTION

    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})  # migrations write: SQLite takes the write lock first
        yield _config(conn)
        if conn.in_transaction():
            conn.commit()


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with _connected(engine) as cfg:
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with _connected(engine) as cfg:
        command.downgrade(cfg, revision)


def history() -> list[str]:
    """One line per revision, newest first: ``<rev> (<down>): <message>``."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    return [f"{s.revision} ({s.down_revision or 'base'}): {s.doc}" for s in scripts.walk_revisions()]


def ensure_schema(engine: Engine) -> None:
    """At start: SQLite is brought up to date; PostgreSQL must already be (see the module's docstring)."""
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    at, want = current(engine), head()
    if at != want:
        where = f"at revision {at}" if at else "empty (no revision)"
        raise SchemaError(f"the database schema is {where}, this hub needs {want}: run `pingan-hub db upgrade` "
                          "once (with PINGAN_DATABASE_URL set), then start the replicas")
