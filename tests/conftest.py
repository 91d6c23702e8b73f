"""Shared fixtures: real brokers, hub and node processes on free loopback ports.

Nothing here is a mock of a server: mosquitto (Debian) or amqtt runs as a subprocess with a
generated config, the hub is ``pingan-hub serve`` and a node is ``pingan-edge run``. Only the
node's pins (gpiozero MockFactory) and camera (synthetic) are simulated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.transport.broker import Broker, find_mosquitto, free_port

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll until ``predicate`` returns something truthy (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")


@pytest.fixture(scope="session")
def mosquitto_exe() -> str:
    exe = find_mosquitto()
    if exe is None:
        pytest.fail("mosquitto is not installed: run scripts/test.sh (it installs it) or apt-get install mosquitto")
    return exe


@pytest.fixture()
def broker(tmp_path: Path, mosquitto_exe: str) -> Iterator[Broker]:
    """A fresh mosquitto for one test; the test may stop and start it again on the same port."""
    b = Broker(tmp_path / "broker", kind="mosquitto").start()
    yield b
    errors = b.errors()
    b.stop()
    assert not errors, f"mosquitto logged errors: {errors}"


@pytest.fixture()
def sim_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes: pytest's tmp dirs are too deep
    d = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Proc:
    """A child process with its log, killable and restartable with the same arguments."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        fh = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        fh.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


ADMIN = ("admin", "admin-password-for-tests")
METRICS_TOKEN = "metrics-token-for-tests"


def ensure_user(data_dir: Path, username: str, password: str, role: str) -> None:
    """Make a staff account in a hub's database, as `pingan-hub users add` does (in-process: faster)."""
    from hub.auth.service import Auth
    from hub.store.engine import init_db, make_engine

    engine = make_engine(f"sqlite:///{(data_dir / 'hub.db').resolve()}")
    try:
        init_db(engine)
        auth = Auth(engine)
        if username not in {u["username"] for u in auth.list_users()}:
            auth.add_user(username, password, role, actor="tests")
    finally:
        engine.dispose()


class HubProc(Proc):
    def __init__(self, tmp: Path, broker_url: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PINGAN_MQTT_URL": broker_url, "PINGAN_DATA_DIR": str(tmp / "hub"),
               "PINGAN_HTTP_PORT": str(self.port), "PINGAN_OFFLINE_GRACE_S": "0", "PINGAN_ACK_RESEND_S": "1",
               "PINGAN_METRICS_TOKEN": METRICS_TOKEN}
        env.update({f"PINGAN_{k.upper()}": v for k, v in settings.items()})
        super().__init__([sys.executable, "-m", "hub.cli", "serve", "--exact-port"], env, tmp / "hub.log")
        self.data_dir = tmp / "hub"
        self.token = ""

    def start(self) -> HubProc:
        ensure_user(self.data_dir, *ADMIN, "admin")
        super().start()
        wait_for(self._healthy, 30, 0.1, f"hub health at {self.url}\n{self.output()[-2000:]}")
        self.token = self.login(*ADMIN)
        return self

    def login(self, username: str, password: str) -> str:
        r = httpx.post(f"{self.url}/api/login", json={"username": username, "password": password}, timeout=10)
        r.raise_for_status()
        return r.json()["token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ws_url(self, path: str = "/api/live") -> str:
        """A URL for one WebSocket connection: a single-use ticket in it, never the session token."""
        r = httpx.post(f"{self.url}/api/live/ticket", headers=self.headers, timeout=10)
        r.raise_for_status()
        sep = "&" if "?" in path else "?"
        return self.url.replace("http://", "ws://") + path + sep + f"ticket={r.json()['ticket']}"

    def wait_online(self, node: str, timeout: float = 30) -> None:
        """Until the hub lists ``node`` online: its birth went through the broker and the ingest."""
        wait_for(lambda: any(n["id"] == node and n["state"] == "online" for n in self.get("/api/nodes")), timeout,
                 0.1, f"{node} online at the hub")

    def metrics(self) -> str:
        r = httpx.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        r.raise_for_status()
        return r.text

    def _healthy(self) -> bool:
        if not self.alive():
            raise AssertionError(f"hub exited:\n{self.output()[-3000:]}")
        try:
            r = httpx.get(f"{self.url}/api/health", timeout=1)
            return r.status_code == 200 and r.json()["mqtt"] == "connected"
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body or {}, headers=self.headers, timeout=10)

    def register(self, node: str) -> str:
        """Register a node the way an installer does; returns its signing key."""
        out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--grid", "G01",
                              "--place", "Test street", "--out", str(self.data_dir.parent / "bundles")],
                             env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def event_ids(self, node: str | None = None, kind: str | None = None) -> list[str]:
        ids: list[str] = []
        after = 0
        while True:
            page = self.get("/api/events", after=after, limit=1000,
                            **({"node": node} if node else {}), **({"kind": kind} if kind else {}))
            ids += [e["id"] for e in page]
            if len(page) < 1000:
                return ids
            after = page[-1]["seq"]


class NodeProc(Proc):
    def __init__(self, tmp: Path, node: str, broker_url: str, sim_dir: Path, key: str | None,
                 **overrides: Any) -> None:
        self.node = node
        self.data_dir = tmp / node
        cfg: dict[str, Any] = {
            "node": {"id": node, "kind": "alarm_post", "place": "Test street", "grid": "G01",
                     "location": {"lat": 24.48, "lon": 118.11}},
            "mqtt": {"url": broker_url},
            "pins": {"factory": "mock"},
            "outbox": {"resend_after_s": 2, "window": 64},
            "data_dir": str(self.data_dir),
            "heartbeat_s": 2,
        }
        for section, values in overrides.items():
            if isinstance(values, dict):
                cfg.setdefault(section, {}).update(values)
            else:
                cfg[section] = values
        self.config_path = tmp / f"{node}.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "PINGAN_SIM_DIR": str(sim_dir), "GPIOZERO_PIN_FACTORY": "mock"}
        if key:
            env["PINGAN_NODE_KEY"] = key
        super().__init__([sys.executable, "-m", "edge.cli", "run", str(self.config_path)], env,
                         tmp / f"{node}.log")
        self.socket = sim_dir / f"{node}.sock"

    def start(self) -> NodeProc:
        self.socket.unlink(missing_ok=True)
        super().start()
        wait_for(lambda: self.socket.exists() or not self.alive(), 30, 0.05, f"{self.node} control socket")
        assert self.alive(), f"node exited:\n{self.output()[-3000:]}"
        return self

    def control(self, **request: Any) -> dict[str, Any]:
        from edge.sim.control import send_control

        answer = send_control(self.socket, request)
        assert answer.get("ok"), answer
        return answer

    def outbox_ids(self) -> list[str]:
        """Event ids still waiting in the node's outbox (read from its SQLite file)."""
        import sqlite3

        db = sqlite3.connect(self.data_dir / "outbox.db")
        try:
            return [k[2:] for (k,) in db.execute("SELECT key FROM outbox WHERE key LIKE 'e:%'")]
        finally:
            db.close()


@pytest.fixture()
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., HubProc]]:
    made: list[HubProc] = []

    def make(broker_url: str, **settings: str) -> HubProc:
        h = HubProc(tmp_path, broker_url, **settings)
        made.append(h)
        return h.start()

    yield make
    for h in made:
        h.stop()


@pytest.fixture()
def node_factory(tmp_path: Path, sim_dir: Path) -> Iterator[Callable[..., NodeProc]]:
    made: list[NodeProc] = []

    def make(node: str, broker_url: str, key: str | None, **overrides: Any) -> NodeProc:
        n = NodeProc(tmp_path, node, broker_url, sim_dir, key, **overrides)
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()


def unique_node() -> str:
    return f"pole-{uuid.uuid4().hex[:6]}"


def read_json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL (Debian's) for the session, on a free loopback port in a temp data dir.

    Skipped with a reason only where it cannot exist (no binaries and not root/no apt); with CI=true
    a missing PostgreSQL fails instead, so CI never skips the PostgreSQL tests silently.
    """
    from tests.pg import PgServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (scripts/bootstrap.sh installs it as root: apt-get install postgresql)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    server = PgServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(pg_server: Any) -> str:
    """A fresh empty database on the session's PostgreSQL."""
    return pg_server.create_database()
