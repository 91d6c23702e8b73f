"""SQLite: a read never queues behind the ingest writer; a write still takes the lock up front."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from hub.store.engine import make_engine


def test_a_read_goes_on_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    holding, read_done = threading.Event(), threading.Event()
    released_by_reader: list[bool] = []

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            holding.set()
            released_by_reader.append(read_done.wait(10))  # False: the read waited for our lock

    t = threading.Thread(target=writer)
    t.start()
    assert holding.wait(10)
    with engine.connect() as conn:  # e.g. a console's query, a /metrics scrape
        seen = conn.execute(text("SELECT COUNT(*) FROM t")).scalar()
    read_done.set()
    t.join()
    assert released_by_reader == [True]
    assert seen == 1  # its snapshot: the uncommitted row is not visible
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2


def test_writers_read_then_write_without_busy_errors(tmp_path: Path) -> None:
    """The reason writers take BEGIN IMMEDIATE: read-then-write transactions in several threads all commit."""
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE c (n INTEGER)"))
        conn.execute(text("INSERT INTO c VALUES (0)"))

    def bump() -> None:
        for _ in range(50):
            with engine.begin() as conn:
                n = conn.execute(text("SELECT n FROM c")).scalar()
                conn.execute(text("UPDATE c SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM c")).scalar() == 200  # no lost update, no SQLITE_BUSY
