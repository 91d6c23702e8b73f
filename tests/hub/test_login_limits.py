"""Login limits under a flood (issue 16): counted in the database before hashing, so they hold under
concurrency, across a restart and between replicas; per IP as well as per username; audit rows and
failure rows stay bounded; and only a bounded number of password hashes run at once.

Requests go through ``httpx.ASGITransport`` and ``asyncio.gather``, so they really are concurrent
(the login route hashes in a worker thread). The hasher is argon2 with a tiny cost that sleeps a
little while it records how many hashes overlap: no timing is asserted.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from hub.app import create_app
from hub.config import load_settings
from hub.store.engine import make_engine
from hub.store.schema import audit, login_failures
from tests.hub.test_auth import Clock

PASSWORD = "operator-pass-1"




class RecordingHasher(PasswordHasher):
    """Cheap argon2 that holds each hash for a moment and records the most that ran at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.verified = 0

    @contextmanager
    def _track(self) -> Iterator[None]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.02)  # long enough for the others to pile up if nothing bounds them
            yield
        finally:
            with self._lock:
                self.running -= 1

    def verify(self, hash: Any, password: Any) -> bool:  # noqa: A002 - PasswordHasher's own names
        with self._track():
            with self._lock:
                self.verified += 1
            return super().verify(hash, password)

    def hash(self, password: Any, *args: Any, **kwargs: Any) -> str:
        with self._track():
            return super().hash(password, *args, **kwargs)


def make_hub(tmp_path: Path, clock: Clock | None = None, **settings: Any) -> Any:
    """A hub app (no MQTT) with the recording hasher and user ``wang``; the same tmp_path is the same DB."""
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, **settings))
    auth = app.state.hub.auth
    auth.hasher = RecordingHasher()
    auth._dummy_hash = auth.hasher.hash("dummy-password")  # unknown users: the same (cheap) cost
    auth.hasher.peak = 0
    if clock is not None:
        auth.clock = clock
    if "wang" not in {u["username"] for u in auth.list_users()}:
        auth.add_user("wang", PASSWORD, "operator")
    return app


async def _logins(app: Any, creds: list[tuple[str, str]], ip: str = "10.0.0.1") -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await asyncio.gather(*(client.post("/api/login", json={"username": u, "password": p})
                                      for u, p in creds))


def flood(app: Any, creds: list[tuple[str, str]], ip: str = "10.0.0.1") -> list[int]:
    return [r.status_code for r in asyncio.run(_logins(app, creds, ip))]


def _count(app: Any, query: Any) -> int:
    with app.state.hub.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_concurrent_guesses_get_at_most_max_failures_tries(tmp_path: Path) -> None:
    app = make_hub(tmp_path, Clock(), login_hash_queue=64)  # every guess admitted: only the limit refuses
    codes = flood(app, [("wang", f"guess-{i}") for i in range(30)])
    assert codes.count(401) == 5 and codes.count(429) == 25, codes
    assert app.state.hub.auth.hasher.verified == 5  # the other 25 never reached the hasher
    assert flood(app, [("wang", PASSWORD)]) == [429]  # the right password too, until the window passes
    assert flood(app, [("wang", PASSWORD)], ip="10.0.0.2") == [200]  # another address is not locked out


def test_the_limit_survives_a_restart_and_is_shared_by_replicas(tmp_path: Path) -> None:
    clock = Clock()
    first = make_hub(tmp_path, clock)
    assert flood(first, [("wang", f"guess-{i}") for i in range(3)]) == [401] * 3
    restarted = make_hub(tmp_path, clock)  # a new process on the same database
    assert sorted(flood(restarted, [("wang", f"again-{i}") for i in range(4)])) == [401, 401, 429, 429]
    assert flood(restarted, [("wang", PASSWORD)]) == [429]
    clock.advance(minutes=5, seconds=1)
    assert flood(restarted, [("wang", PASSWORD)]) == [200]  # the window passed; success clears the count
    assert flood(first, [("wang", "one-wrong")]) == [401]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings for two replicas on one database."""
    if request.param == "sqlite":
        return {"database_url": f"sqlite:///{tmp_path / 'shared.db'}"}
    from hub.store import migrate as db

    url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    db.upgrade(engine)  # what `pingan-hub db upgrade` does before replicas start
    engine.dispose()
    return {"database_url": url}


def test_replicas_share_one_limit_under_a_concurrent_flood(tmp_path: Path, shared_db: dict[str, Any]) -> None:
    a = make_hub(tmp_path / "a", login_hash_queue=64, **shared_db)
    b = make_hub(tmp_path / "b", login_hash_queue=64, **shared_db)
    guesses = [("wang", f"guess-{i}") for i in range(12)]

    async def both() -> list[httpx.Response]:
        ra, rb = await asyncio.gather(_logins(a, guesses), _logins(b, guesses))
        return ra + rb

    codes = [r.status_code for r in asyncio.run(both())]
    assert codes.count(401) == 5 and codes.count(429) == 19, codes


def test_random_usernames_from_one_ip_are_limited_and_rows_stay_bounded(tmp_path: Path) -> None:
    clock = Clock()
    app = make_hub(tmp_path, clock, login_max_failures_per_ip=10, login_hash_queue=64)
    for _ in range(3):
        codes = flood(app, [(f"nobody-{uuid.uuid4().hex[:8]}", "x") for _ in range(25)])
        assert codes.count(401) <= 10 and codes.count(429) >= 15, codes
    assert _count(app, select(func.count()).select_from(login_failures)) == 10
    audited = _count(app, select(func.count()).select_from(audit)
                     .where(audit.c.action.in_(["login.failed", "login.limited"])))
    assert audited == 2  # the address's first failure and the one that reached the limit, not 10 (or 75)
    assert flood(app, [("wang", PASSWORD)]) == [429]  # the address is limited, whatever the username
    assert flood(app, [("wang", PASSWORD)], ip="10.0.0.2") == [200]
    clock.advance(minutes=5, seconds=1)
    assert flood(app, [("ghost", "x")], ip="10.0.0.3") == [401]  # a new attempt purges what the window left
    assert _count(app, select(func.count()).select_from(login_failures)) == 1
    assert flood(app, [("wang", PASSWORD)]) == [200]


def test_hashing_is_bounded_and_the_rest_are_refused_fast(tmp_path: Path) -> None:
    app = make_hub(tmp_path, login_hash_concurrency=2, login_hash_queue=4, login_max_failures_per_ip=1000,
                   login_max_failures=1000)
    hasher = app.state.hub.auth.hasher
    creds = [(f"nobody-{i}", "x") if i % 2 else ("wang", PASSWORD if i % 4 == 0 else "wrong") for i in range(30)]
    responses = asyncio.run(_logins(app, creds))
    codes = [r.status_code for r in responses]
    assert hasher.peak <= 2  # never more than login_hash_concurrency argon2 hashes at once
    assert 503 in codes and all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    admitted = [c for c in codes if c != 503]
    assert len(admitted) >= 6 and set(admitted) <= {200, 401}
    assert hasher.verified == len(admitted)  # unknown users are verified too (a dummy hash): the same cost
    hasher.peak = 0
    codes = flood(app, [(f"nobody-{i}", "x") for i in range(4)] + [("wang", PASSWORD)] * 2)
    assert 503 not in codes and codes.count(200) == 2 and hasher.peak <= 2  # within the queue: all wait
