"""Alembic environment: the models' metadata (every module that defines a table) and the hub's engine.

``hub.store.migrate`` builds the Alembic config in code (no alembic.ini to ship) and passes an open
connection in ``config.attributes["connection"]``; SQLite runs in batch mode so later revisions
can alter columns (SQLite's ALTER TABLE cannot).
"""

from __future__ import annotations

from alembic import context

from hub.store.engine import make_engine
from hub.store.migrate import all_metadata, render_item

config = context.config
target_metadata = all_metadata()


def _run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                      render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()
