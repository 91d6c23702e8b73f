"""Staff login and the access policy: every route (walked from app.routes, WebSockets included),
roles, the login rate limit, sliding session expiry with an injected clock, Origin checks, /metrics."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import WebSocketDenialResponse

from hub.app import create_app
from hub.auth.policy import requires, walk_routes
from hub.auth.service import PUBLIC_PATHS, PUBLIC_PREFIXES
from hub.config import load_settings
from hub.store.schema import alarms

PASSWORDS = {"boss": "admin-pass-1", "wang": "operator-pass-1", "zhao": "installer-pass-1"}
ROLE_OF = {"boss": "admin", "wang": "operator", "zhao": "installer"}
METRICS_TOKEN = "s3cret-scrape"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _extra_router() -> APIRouter:
    """A router added after create_app, as another feature would: protected without doing anything."""
    r = APIRouter()

    @r.get("/api/extra/things")
    def things() -> dict:
        return {"ok": True}

    @r.post("/api/extra/things")
    def change_things() -> dict:
        return {"ok": True}

    @r.post("/api/extra/survey")
    @requires("installer", "admin")
    def survey() -> dict:
        return {"ok": True}

    return r


@pytest.fixture()
def app_env(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=False, metrics_token=METRICS_TOKEN)
    app = create_app(settings)
    app.include_router(_extra_router())
    state = app.state.hub
    clock = Clock()
    state.auth.clock = clock
    for name, pw in PASSWORDS.items():
        state.auth.add_user(name, pw, ROLE_OF[name])
    state.service.register_node("pole-01", grid="G01", place="Market", lat=24.48, lon=118.11)
    with TestClient(app) as client:
        yield SimpleNamespace(app=app, state=state, client=client, clock=clock)


def _alarm(state, kind: str = "alarm.pressed") -> str:
    aid = str(uuid.uuid4())
    now = datetime.now(UTC)
    with state.engine.begin() as conn:
        conn.execute(alarms.insert().values(id=aid, node="pole-01", kind=kind, state="open", count=1,
                                            node_ts=now, raised_at=now))
    return aid


def _token(client: TestClient, user: str) -> str:
    r = client.post("/api/login", json={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # these tests use the bearer token only, unless they say otherwise
    return r.json()["token"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def test_every_route_refuses_anonymous_callers(app_env) -> None:
    app, client = app_env.app, app_env.client
    checked_http = checked_ws = 0
    seen = set()
    for route in walk_routes(app.routes):
        path = _concrete(route.path)
        seen.add(route.path)
        if route.methods is None:  # a WebSocket route
            assert isinstance(getattr(route, "original_route", route), (APIWebSocketRoute, WebSocketRoute))
            with pytest.raises(WebSocketDenialResponse) as denied:
                with client.websocket_connect(path):
                    pass
            assert denied.value.status_code == 401, path
            checked_ws += 1
            continue
        assert isinstance(getattr(route, "original_route", route), (APIRoute, Route)), route
        for method in sorted(route.methods or {"GET"}):
            r = client.request(method, path, json={})
            if _is_public(route.path):
                assert r.status_code != 401, (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                assert r.headers.get("www-authenticate") == "Bearer"
            checked_http += 1
    assert checked_ws >= 1 and checked_http >= 15
    assert {"/api/live", "/api/alarms/{alarm_id}/ack", "/api/reports/summary", "/api/extra/things"} <= seen
    assert client.get("/api/health").status_code == 200
    assert client.get("/").status_code == 200


ROLE_CASES = [
    # (method, path, body, allowed roles)
    ("GET", "/api/nodes", None, {"admin", "operator", "installer"}),
    ("GET", "/api/events", None, {"admin", "operator", "installer"}),
    ("GET", "/api/alarms", None, {"admin", "operator", "installer"}),
    ("POST", "/api/alarms/{aid}/ack", {}, {"admin", "operator"}),
    ("POST", "/api/alarms/{aid}/resolve", {"outcome": "assisted"}, {"admin", "operator"}),
    ("GET", "/api/reports/summary", None, {"admin", "operator", "installer"}),
    ("GET", "/api/users", None, {"admin"}),
    ("GET", "/api/extra/things", None, {"admin", "operator", "installer"}),
    ("POST", "/api/extra/things", {}, {"admin"}),  # an undeclared change: admins only by default
    ("POST", "/api/extra/survey", {}, {"admin", "installer"}),
]


@pytest.mark.parametrize("method, path, body, allowed", ROLE_CASES)
def test_roles(app_env, method, path, body, allowed) -> None:
    state, client = app_env.state, app_env.client
    for user, role in ROLE_OF.items():
        aid = _alarm(state)
        r = client.request(method, path.format(aid=aid), json=body, headers=_bearer(_token(client, user)))
        if role in allowed:
            assert r.status_code == 200, (user, method, path, r.text)
        else:
            assert r.status_code == 403, (user, method, path, r.status_code)


def test_the_logged_in_user_is_recorded_not_the_body(app_env) -> None:
    state, client = app_env.state, app_env.client
    aid = _alarm(state)
    token = _token(client, "wang")
    r = client.post(f"/api/alarms/{aid}/ack", json={"operator": "someone-else"}, headers=_bearer(token))
    assert r.json()["acked_by"] == "wang"


def test_login_is_rate_limited_per_username_and_ip(app_env) -> None:
    client, clock = app_env.client, app_env.clock
    for _ in range(5):
        assert client.post("/api/login", json={"username": "wang", "password": "nope"}).status_code == 401
    r = client.post("/api/login", json={"username": "wang", "password": PASSWORDS["wang"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert client.post("/api/login", json={"username": "boss", "password": PASSWORDS["boss"]}).status_code == 200
    clock.advance(minutes=5, seconds=1)
    assert client.post("/api/login", json={"username": "wang", "password": PASSWORDS["wang"]}).status_code == 200
    assert client.post("/api/login", json={"username": "ghost", "password": "x"}).status_code == 401


def test_session_slides_while_used_and_expires_when_idle(app_env) -> None:
    client, clock = app_env.client, app_env.clock
    token = _token(client, "wang")
    for _ in range(3):  # the console is open all night: each use pushes the expiry on
        clock.advance(hours=11)
        assert client.get("/api/alarms", headers=_bearer(token)).status_code == 200
    clock.advance(hours=12, seconds=1)
    assert client.get("/api/alarms", headers=_bearer(token)).status_code == 401


def test_logout_and_disable_end_sessions(app_env) -> None:
    state, client = app_env.state, app_env.client
    token = _token(client, "wang")
    assert client.post("/api/logout", headers=_bearer(token)).status_code == 200
    assert client.get("/api/alarms", headers=_bearer(token)).status_code == 401
    token = _token(client, "zhao")
    state.auth.set_disabled("zhao", True)
    assert client.get("/api/alarms", headers=_bearer(token)).status_code == 401
    assert client.post("/api/login", json={"username": "zhao", "password": PASSWORDS["zhao"]}).status_code == 401


def test_cookie_session_and_origin_check(app_env) -> None:
    state, client = app_env.state, app_env.client
    r = client.post("/api/login", json={"username": "wang", "password": PASSWORDS["wang"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "pingan_session=" in cookie
    assert client.get("/api/alarms").status_code == 200  # reads need no Origin
    aid = _alarm(state)
    assert client.post(f"/api/alarms/{aid}/ack", json={}, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(f"/api/alarms/{aid}/ack", json={}).status_code == 403  # no Origin at all
    ok = client.post(f"/api/alarms/{aid}/ack", json={}, headers={"Origin": "http://testserver"})
    assert ok.status_code == 200 and ok.json()["acked_by"] == "wang"
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/api/live", headers={"Origin": "https://evil.example"}):
            pass
    assert denied.value.status_code == 403
    with client.websocket_connect("/api/live", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"
    # a login from another site's page is refused (login CSRF)
    assert client.post("/api/login", json={"username": "wang", "password": PASSWORDS["wang"]},
                       headers={"Origin": "https://evil.example"}).status_code == 403


def test_metrics_need_the_scrape_token(app_env, tmp_path: Path) -> None:
    client = app_env.client
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=_bearer(_token(client, "boss"))).status_code == 401  # a session is not it
    r = client.get("/metrics", headers=_bearer(METRICS_TOKEN))
    assert r.status_code == 200 and "pingan_hub" in r.text
    bare = create_app(load_settings(data_dir=tmp_path / "other", mqtt_enabled=False))
    with TestClient(bare) as other:  # no token configured: refused, whatever is sent
        assert other.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_users_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"PINGAN_DATA_DIR": str(tmp_path / "hub"), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "hub.cli", "users"]
    out = subprocess.run([*run, "add", "chen", "--role", "admin", "--password-stdin"], input="long-enough-pw\n",
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    again = subprocess.run([*run, "add", "chen", "--password-stdin"], input="long-enough-pw\n", env=env,
                           capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
    listed = subprocess.run([*run, "list"], env=env, capture_output=True, text=True)
    assert "chen" in listed.stdout and "admin" in listed.stdout
    app = create_app(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    with TestClient(app) as client:
        assert client.post("/api/login", json={"username": "chen", "password": "long-enough-pw"}).status_code == 200


def test_app_without_extra_router_still_guards_plain_routes(tmp_path: Path) -> None:
    app: FastAPI = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False))

    async def raw(request):  # a plain Starlette route, no FastAPI dependencies at all
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("secret")

    app.add_route("/api/raw", raw)
    with TestClient(app) as client:
        assert client.get("/api/raw").status_code == 401
