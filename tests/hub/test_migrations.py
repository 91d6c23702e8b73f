"""Alembic migrations on both databases: up, down, adoption of a pre-migration SQLite file, and the
models' schema exactly equal to what the migrations make (so a table added without a revision fails)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from hub.store import migrate as db
from hub.store.engine import insert_ignore, make_engine, now_utc
from hub.store.schema import events


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_url")


def _diff(engine) -> list:  # noqa: ANN001
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, db.all_metadata())


def test_upgrade_makes_exactly_the_models_schema_and_downgrade_empties(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert db.current(engine) is None
        db.upgrade(engine)
        assert db.current(engine) == db.head()
        assert _diff(engine) == [], "a model changed without an Alembic revision: add one in hub/store/migrations"
        tables = set(inspect(engine).get_table_names())
        assert {"events", "alarms", "nodes", "users", "alarm_escalations", "node_credentials"} <= tables
        with engine.begin() as conn:  # idempotent insert works on this dialect
            row = {"id": "00000000-0000-4000-8000-000000000001", "node": "pole-01", "kind": "alarm.pressed",
                   "ts": now_utc(), "received_at": now_utc(), "data": {"n": 1}, "snapshot": False, "delayed": False}
            assert insert_ignore(conn, events, row, "id") == 1
            assert insert_ignore(conn, events, row, "id") == 0
            assert conn.execute(select(events.c.data)).scalar() == {"n": 1}
        db.downgrade(engine, "base")
        assert db.current(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        db.upgrade(engine)  # and up again over the emptied database
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_a_model_without_a_revision_is_caught(db_url: str) -> None:
    """The check above really fails when someone adds a table and forgets the revision."""
    from sqlalchemy import Column, Integer, Table

    engine = make_engine(db_url)
    metadata = db.all_metadata()
    extra = Table("live_view_audit_probe", metadata, Column("id", Integer, primary_key=True))
    try:
        db.upgrade(engine)
        diff = _diff(engine)
        assert any(d[0] == "add_table" and d[1].name == "live_view_audit_probe" for d in diff)
    finally:
        metadata.remove(extra)
        engine.dispose()


def test_sqlite_made_by_create_all_before_migrations_is_adopted(tmp_path: Path) -> None:
    """An old district database (create_all, no alembic_version, no commands.data) keeps its rows."""
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata = db.all_metadata()
    metadata.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE commands DROP COLUMN data")
    con.execute("INSERT INTO nodes (id, kind, place, grid, state, created) "
                "VALUES ('pole-07', 'alarm_post', 'Gate', 'G1', 'online', '2026-01-01 00:00:00')")
    con.commit()
    con.close()
    engine = make_engine(f"sqlite:///{path}")
    try:
        from hub.store.engine import init_db

        init_db(engine)  # what serve does at start on SQLite
        assert db.current(engine) == db.head()
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id FROM nodes").scalar() == "pole-07"
    finally:
        engine.dispose()


def test_serve_refuses_an_outdated_postgresql_with_the_command_to_run(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATABASE_URL": pg_url, "PINGAN_DATA_DIR": str(tmp_path / "hub"),
           "PINGAN_MQTT_ENABLED": "false"}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "serve", "--exact-port", "--port", "1"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "run `pingan-hub db upgrade`" in out.stderr and "Traceback" not in out.stderr
    up = subprocess.run([sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, capture_output=True, text=True,
                        timeout=60)
    assert up.returncode == 0, up.stderr
    assert f"at revision {db.head()}" in up.stdout
    cur = subprocess.run([sys.executable, "-m", "hub.cli", "db", "current"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert f"at {db.head()}; this hub needs {db.head()}" in cur.stdout
    bad = subprocess.run([sys.executable, "-m", "hub.cli", "db", "current"], capture_output=True, text=True,
                         env={**env, "PINGAN_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
                         timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_a_responders_phone_moves_into_the_one_phone_book(db_url: str) -> None:
    """0010: numbers kept in responders.phone go to notify_contacts (unless it has one), and the column goes."""
    from sqlalchemy import text
    engine = make_engine(db_url)
    try:
        db.upgrade(engine, "0009")
        with engine.begin() as conn:
            for name, phone in (("zhang", "13800000001"), ("chen", "13800000002"), ("liu", "")):
                conn.execute(text("INSERT INTO responders (username, name, team, kind, phone, consent) "
                                  "VALUES (:u, :u, 'vol1', 'volunteer', :p, false)"), {"u": name, "p": phone})
            conn.execute(text("INSERT INTO notify_contacts (username, phone, updated) VALUES "
                              "('chen', '13900000009', :t)"), {"t": now_utc().replace(tzinfo=None)})
        db.upgrade(engine)
        with engine.connect() as conn:
            book = dict(conn.execute(text("SELECT username, phone FROM notify_contacts")).all())
        assert book == {"zhang": "13800000001", "chen": "13900000009"}  # the phone book's own entry wins
        assert "phone" not in {c["name"] for c in inspect(engine).get_columns("responders")}
    finally:
        engine.dispose()
