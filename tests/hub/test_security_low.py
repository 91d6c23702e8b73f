"""Issue 16, the low findings: private database files, the registered kind wins over a node's status,
no 500 for a malformed static name, X-Forwarded-For only from named proxies, security headers, and
single-use WebSocket tickets instead of ``?token=`` in the URL."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.testclient import WebSocketDenialResponse

from edge.protocol import Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import Incoming, Ingest
from tests.fake_transport import FakeTransport

ADMIN = ("li", "correct horse battery")
OPERATOR = ("wang", "operator-pass-1")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a shell or an older unit gives: files 0644, folders 0755
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[tuple[Any, TestClient]]:
    app = create_app(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=True, offline_grace_s=0),
                     transport=FakeTransport())  # no network: batches are fed by hand
    state = app.state.hub
    state.auth.add_user(*ADMIN, "admin")
    state.auth.add_user(*OPERATOR, "operator")
    state.ingest.notify = lambda items: None
    with TestClient(app, raise_server_exceptions=False) as client:
        yield state, client


def _bearer(client: TestClient, user: tuple[str, str]) -> dict[str, str]:
    r = client.post("/api/login", json={"username": user[0], "password": user[1]})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # the tests choose how they authenticate
    return {"Authorization": f"Bearer {r.json()['token']}"}


# --- 1. databases 0600 in 0700 folders ---------------------------------------------------------------
def test_hub_database_and_its_wal_are_private_under_a_permissive_umask(tmp_path: Path, permissive_umask) -> None:
    data = tmp_path / "new" / "hub"
    app = create_app(load_settings(data_dir=data, mqtt_enabled=False))
    app.state.hub.auth.add_user(*ADMIN, "admin")  # a write: the -wal and -shm exist now
    db = data / "hub.db"
    try:
        assert _mode(data) == 0o700 and _mode(data.parent) == 0o700
        for path in (db, db.with_name("hub.db-wal"), db.with_name("hub.db-shm")):
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        app.state.hub.engine.dispose()


def test_a_database_left_readable_by_an_older_version_is_tightened(tmp_path: Path, permissive_umask) -> None:
    from hub.store.engine import make_engine

    db = tmp_path / "hub.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    assert _mode(db) == 0o600


def test_node_databases_are_private_under_a_permissive_umask(tmp_path: Path, permissive_umask) -> None:
    from edge.clock import SystemClock
    from edge.link.commands import CommandGuard
    from edge.link.outbox import Outbox
    from edge.protocol import Priority
    from edge.roles.door.access_list import AccessList

    data = tmp_path / "var" / "pingan"
    outbox = Outbox(data / "outbox.db", reserve_bytes=0)
    outbox.put("e:1", "pingan/v1/node/x/events", b"{}", Priority.ALARM)
    access = AccessList(data / "access.db")
    guard = CommandGuard("door-1", b"k" * 32, data / "nonces.db", SystemClock())
    guard._db.execute("INSERT INTO nonces VALUES ('n', 0)")  # a write: the -wal exists
    try:
        assert _mode(data) == 0o700 and _mode(data.parent) == 0o700
        for name in ("outbox.db", "access.db", "nonces.db"):
            assert _mode(data / name) == 0o600, name
        for wal in ("outbox.db-wal", "nonces.db-wal"):
            assert _mode(data / wal) == 0o600, wal
    finally:
        outbox._db.close()
        access._db.close()
        guard._db.close()


def test_in_memory_databases_stay_in_memory(tmp_path: Path, monkeypatch) -> None:
    from edge.clock import SystemClock
    from edge.link.commands import CommandGuard

    monkeypatch.chdir(tmp_path)
    CommandGuard("door-1", b"k" * 32, ":memory:", SystemClock())._db.close()
    assert list(tmp_path.iterdir()) == []


def test_systemd_units_keep_state_private() -> None:
    root = Path(__file__).resolve().parents[2] / "systemd"
    for unit in ("pingan-hub.service", "pingan-edge.service"):
        text = (root / unit).read_text()
        assert "\nUMask=0077\n" in text and "\nStateDirectoryMode=0700\n" in text, unit


# --- 2. the registered kind wins over a retained status ----------------------------------------------
def _feed(ingest: Ingest, topic: str, payload: bytes) -> None:
    ingest.handle_batch([Incoming(topic, payload, 1, 1, utcnow())])


def _rejections(reason: str) -> float:
    from hub.runtime import metrics

    return metrics.registry.get_sample_value("pingan_hub_rejected_total", {"reason": reason}) or 0.0


def test_a_status_cannot_change_the_kind_an_installer_registered(hub) -> None:
    from hub.store.schema import alarms, events, nodes

    state, client = hub
    state.service.register_node("door-07", kind="rental_door", grid="G01", place="Block 7")
    before = _rejections("status kind mismatch")
    for _ in range(2):  # a retained status comes again on every reconnect: one fault, counted each time
        _feed(state.ingest, Topics.status("door-07"), b'{"state": "online", "kind": "alarm_post", "version": "9"}')
    with state.engine.connect() as conn:
        row = conn.execute(select(nodes.c.kind, nodes.c.state, nodes.c.version).where(nodes.c.id == "door-07")).one()
        faults = conn.execute(select(events.c.data).where(events.c.node == "door-07",
                                                          events.c.kind == "node.fault")).scalars().all()
        fault_alarms = conn.execute(select(alarms.c.id).where(alarms.c.node == "door-07",
                                                              alarms.c.kind == "node.fault")).all()
    assert row.kind == "rental_door"  # the registered kind wins
    assert row.state == "online" and row.version == "9"  # the rest of the status still counts
    assert _rejections("status kind mismatch") == before + 2
    assert len(faults) == 1 and faults[0]["reason"] == "status says kind alarm_post, registered as rental_door"
    assert len(fault_alarms) == 1  # staff see it
    # a status that agrees changes nothing, and an unregistered node is still known by what it says
    _feed(state.ingest, Topics.status("door-07"), b'{"state": "online", "kind": "rental_door"}')
    _feed(state.ingest, Topics.status("pole-99"), b'{"state": "online", "kind": "rental_door"}')
    assert _rejections("status kind mismatch") == before + 2
    with state.engine.connect() as conn:
        assert conn.execute(select(nodes.c.kind).where(nodes.c.id == "pole-99")).scalar() == "rental_door"


# --- 3. a malformed static name is a 404 -------------------------------------------------------------
@pytest.mark.parametrize("path", ["/static/console.js%00.css", "/static/%00", "/static/..%2Fconsole.py",
                                  "/static/.hidden.js", "/static/" + "a" * 300 + ".js"])
def test_malformed_static_names_are_404_without_a_traceback(hub, path: str, caplog) -> None:
    state, client = hub
    caplog.set_level(logging.DEBUG)
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info], caplog.text
    assert client.get("/static/console.js").status_code == 200


# --- 4. X-Forwarded-For only from the proxies named ----------------------------------------------------
def _login_ip(app: Any, peer: str, forwarded: str) -> str:
    from hub.store.schema import sessions

    async def go() -> None:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            r = await c.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]},
                             headers={"X-Forwarded-For": forwarded})
            assert r.status_code == 200, r.text

    asyncio.run(go())
    with app.state.hub.engine.connect() as conn:
        return conn.execute(select(sessions.c.ip).order_by(sessions.c.created.desc())).scalars().first()


def test_forwarded_for_is_ignored_unless_the_proxy_is_named(tmp_path: Path) -> None:
    plain = create_app(load_settings(data_dir=tmp_path / "a", mqtt_enabled=False))
    plain.state.hub.auth.add_user(*ADMIN, "admin")
    assert _login_ip(plain, "127.0.0.1", "203.0.113.9") == "127.0.0.1"  # loopback is not trusted by default

    proxied = create_app(load_settings(data_dir=tmp_path / "b", mqtt_enabled=False,
                                       trusted_proxies="10.0.0.7/24, 127.0.0.1"))
    proxied.state.hub.auth.add_user(*ADMIN, "admin")
    assert _login_ip(proxied, "10.0.0.5", "203.0.113.9") == "203.0.113.9"
    assert _login_ip(proxied, "192.0.2.1", "203.0.113.9") == "192.0.2.1"  # not a named proxy
    for app in (plain, proxied):
        app.state.hub.engine.dispose()


def test_trusted_proxies_must_be_addresses() -> None:
    from hub.errors import SettingsError

    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings(mqtt_enabled=False, trusted_proxies="proxy.example")


def test_serve_leaves_forwarded_headers_to_the_app(tmp_path: Path, monkeypatch) -> None:
    """uvicorn's own default believes X-Forwarded-For from 127.0.0.1: `pingan-hub serve` turns that off."""
    import uvicorn
    from typer.testing import CliRunner

    from hub.cli.main import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: seen.update(kw))
    monkeypatch.setenv("PINGAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PINGAN_MQTT_ENABLED", "false")
    result = CliRunner().invoke(cli, ["serve", "--exact-port", "--port", "18765"])
    assert result.exit_code == 0, result.output
    assert seen.get("proxy_headers") is False


# --- 5. security headers -------------------------------------------------------------------------------
def test_security_headers_on_page_api_static_and_errors(hub) -> None:
    state, client = hub
    headers = _bearer(client, ADMIN)
    for r in (client.get("/"), client.get("/api/alarms", headers=headers), client.get("/static/console.js"),
              client.get("/api/alarms"), client.get("/static/nope.js")):
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, r.url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "connect-src 'self' ws://testserver wss://testserver" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"  # no-referrer would make browsers send Origin: null


def test_the_console_page_has_nothing_inline_for_the_csp_to_block() -> None:
    import re

    web = Path(__file__).resolve().parents[2] / "hub" / "web"
    html = (web / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script>"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), "inline style or event handler"
    for js in web.glob("*.js"):
        text = js.read_text()
        assert not re.search(r"\sstyle=|\son[a-z]+=\\?[\"']|eval\(|new Function", text), js.name


# --- 6. WebSocket: a single-use ticket, never ?token= ----------------------------------------------------
def test_websocket_refuses_the_session_token_in_the_url(hub) -> None:
    state, client = hub
    token = _bearer(client, OPERATOR)["Authorization"][7:]
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(f"/api/live?token={token}"):
            pass
    assert denied.value.status_code == 401
    with client.websocket_connect("/api/live", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["type"] == "hello"  # the header still works (not in any URL)


def test_a_live_ticket_works_once_and_only_as_a_ticket(hub) -> None:
    state, client = hub
    headers = _bearer(client, OPERATOR)
    assert client.post("/api/live/ticket").status_code == 401
    r = client.post("/api/live/ticket", headers=headers)
    assert r.status_code == 200 and 0 < r.json()["expires_in_s"] <= 60
    ticket = r.json()["ticket"]
    assert client.get("/api/alarms", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401  # not a token
    with client.websocket_connect(f"/api/live?ticket={ticket}") as ws:
        assert ws.receive_json()["type"] == "hello"
    with pytest.raises(WebSocketDenialResponse) as again:
        with client.websocket_connect(f"/api/live?ticket={ticket}"):
            pass
    assert again.value.status_code == 401
    token = headers["Authorization"][7:]
    with pytest.raises(WebSocketDenialResponse) as token_as_ticket:  # nor is a session token a ticket
        with client.websocket_connect(f"/api/live?ticket={token}"):
            pass
    assert token_as_ticket.value.status_code == 401


def test_a_live_ticket_expires(hub, monkeypatch) -> None:
    from datetime import timedelta

    from hub.auth import service as auth_mod

    state, client = hub
    ticket = client.post("/api/live/ticket", headers=_bearer(client, OPERATOR)).json()["ticket"]
    later = utcnow() + timedelta(seconds=auth_mod.LIVE_TICKET_TTL_S + 1)
    monkeypatch.setattr(state.auth, "clock", lambda: later)
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect(f"/api/live?ticket={ticket}"):
            pass
    assert denied.value.status_code == 401


def test_nobody_puts_the_session_token_in_a_websocket_url() -> None:
    root = Path(__file__).resolve().parents[2]
    files = [*root.glob("hub/web/*.js"), *root.glob("bench/*.py"), root / "hub" / "cli" / "demo.py",
             *(p for p in root.glob("tests/**/*.py") if p.name != Path(__file__).name)]
    offenders = [str(p.relative_to(root)) for p in files if "token={" in p.read_text() or "?token=" in p.read_text()]
    assert offenders == [], offenders


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
