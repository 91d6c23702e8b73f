"""Staff login, sessions, and the access policy every HTTP and WebSocket route goes through.

Default deny: :class:`AuthMiddleware` wraps the whole application, so a route added later by any
router (``app.include_router``, ``app.add_route``, a mount) is protected without doing anything:

* anonymous callers get 401 everywhere except :data:`PUBLIC_PATHS` / :data:`PUBLIC_PREFIXES`;
* a route's roles come from :func:`requires` on its endpoint; without it, reads (GET/HEAD and
  WebSockets) are open to every staff role and changes (POST/PUT/PATCH/DELETE) to admins only;
* a change made with the browser's cookie must come from our own origin (Origin header);
* ``/metrics`` takes ``Authorization: Bearer $PINGAN_METRICS_TOKEN`` and nothing else.

Sessions are random tokens (only their SHA-256 is stored), sliding: each use pushes the expiry
``session_ttl_s`` further, so an open console stays logged in through the night shift.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlparse

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Column, Index, String, Table, Text, delete, select, update
from sqlalchemy.engine import Engine
from starlette.routing import Match

from hub.errors import HubError
from hub.store import UTCDateTime, add_audit, metadata, now_utc

ROLES = ("operator", "installer", "admin")
ALL_STAFF = frozenset(ROLES)
ADMIN_ONLY = frozenset({"admin"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/", "/api/health", "/api/login", "/docs", "/docs/oauth2-redirect", "/openapi.json",
                          "/redoc", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
METRICS_PATH = "/metrics"
COOKIE = "pingan_session"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"

users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", UTCDateTime(), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the bearer token / cookie
    Column("username", String(64), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ip", String(64)),
    Index("sessions_username", "username"),
)


class AuthError(HubError):
    """A user could not be created or changed."""


def requires(*roles: str) -> Callable[[Any], Any]:
    """Declare which roles may call an endpoint: ``@requires("operator", "admin")`` under the route decorator."""
    unknown = set(roles) - ALL_STAFF
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; use {ROLES}")

    def mark(endpoint: Any) -> Any:
        endpoint.__pingan_roles__ = frozenset(roles)
        return endpoint

    return mark


@dataclass(frozen=True)
class User:
    username: str
    role: str
    via: str = "token"  # "token" (Authorization header or ?token=) or "cookie"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Users, sessions and the login rate limit. ``clock`` is injectable for tests."""

    def __init__(self, engine: Engine, *, session_ttl_s: float = 12 * 3600, max_failures: int = 5,
                 window_s: float = 300, metrics_token: str | None = None,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self.engine = engine
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_s)
        self.metrics_token = metrics_token
        self.clock = clock
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        metadata.create_all(engine, tables=[users, sessions])

    # --- users ---------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str, *, actor: str = "cli", replace: bool = False) -> None:
        import re

        if not re.match(USERNAME_PATTERN, username):
            raise AuthError(f"bad username {username!r}: use letters, digits and . _ @ - (at most 64)")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise AuthError("the password must have at least 8 characters")
        pw_hash = self.hasher.hash(password)
        with self.engine.begin() as conn:
            exists = conn.execute(select(users.c.username).where(users.c.username == username)).first()
            if exists and not replace:
                raise AuthError(f"user {username} exists (use `pingan-hub users passwd {username}`)")
            if exists:
                conn.execute(update(users).where(users.c.username == username).values(
                    password_hash=pw_hash, role=role, disabled=False))
                conn.execute(delete(sessions).where(sessions.c.username == username))
            else:
                conn.execute(users.insert().values(username=username, password_hash=pw_hash, role=role,
                                                   disabled=False, created=self.clock()))
            add_audit(conn, actor, "user.set" if exists else "user.add", username, {"role": role})

    def set_disabled(self, username: str, disabled: bool, *, actor: str = "cli") -> None:
        with self.engine.begin() as conn:
            if not conn.execute(update(users).where(users.c.username == username)
                                .values(disabled=disabled)).rowcount:
                raise AuthError(f"no user {username}")
            if disabled:
                conn.execute(delete(sessions).where(sessions.c.username == username))
            add_audit(conn, actor, "user.disable" if disabled else "user.enable", username)

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{"username": r.username, "role": r.role, "disabled": r.disabled, "created": r.created.isoformat()}
                    for r in conn.execute(select(users).order_by(users.c.username))]

    # --- login ---------------------------------------------------------------------------------
    def _recent_failures(self, key: tuple[str, str]) -> deque[datetime]:
        q = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def login(self, username: str, password: str, ip: str) -> tuple[str, User]:
        """A new session token, or HTTPException 401 (bad credentials) / 429 (too many failures)."""
        key = (username.lower(), ip)
        failures = self._recent_failures(key)
        if len(failures) >= self.max_failures:
            retry = int((failures[0] + self.window - self.clock()).total_seconds()) + 1
            raise HTTPException(429, "too many failed logins; try again later", headers={"Retry-After": str(retry)})
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        ok = False
        try:
            ok = self.hasher.verify(row.password_hash if row else self._dummy_hash, password) and row is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row.disabled:
            failures.append(self.clock())
            with self.engine.begin() as conn:
                add_audit(conn, username[:64] or "-", "login.failed", ip)
            raise HTTPException(401, "wrong username or password")
        self._failures.pop(key, None)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            if self.hasher.check_needs_rehash(row.password_hash):
                conn.execute(update(users).where(users.c.username == username).values(
                    password_hash=self.hasher.hash(password)))
            conn.execute(sessions.insert().values(token_hash=_digest(token), username=username, created=now,
                                                  last_seen=now, expires_at=now + self.session_ttl, ip=ip[:64]))
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            add_audit(conn, username, "login", ip)
        return token, User(username, row.role)

    def session_user(self, token: str, via: str = "token") -> User | None:
        """The user behind a live session (sliding its expiry), or None."""
        now = self.clock()
        digest = _digest(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions.c.expires_at, sessions.c.last_seen, users.c.username, users.c.role,
                                      users.c.disabled)
                               .join(users, users.c.username == sessions.c.username)
                               .where(sessions.c.token_hash == digest)).first()
        if row is None or row.disabled or row.expires_at <= now:
            return None
        if (now - row.last_seen).total_seconds() >= 30:  # slide, at most one write per 30 s per session
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.token_hash == digest).values(
                    last_seen=now, expires_at=now + self.session_ttl))
        return User(row.username, row.role, via)

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _digest(token)))

    def metrics_allowed(self, header: str | None) -> bool:
        if not self.metrics_token or not header or not header.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.metrics_token.encode())


# --- the middleware ----------------------------------------------------------------------------
def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def walk_routes(routes: Any) -> Any:
    """Every route of an app, flattened (newer FastAPI keeps included routers as lazy ``_IncludedRouter``s)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # older FastAPI: include_router copies routes into app.routes
        yield from routes
        return
    yield from iter_route_contexts(routes)


def route_roles(app: Any, scope: dict[str, Any]) -> frozenset[str]:
    """Roles allowed on the route this request would reach (see :func:`requires` and the defaults)."""
    partial = None
    for route in walk_routes(getattr(app, "routes", [])):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            partial = route
            break
        if match == Match.PARTIAL and partial is None:
            partial = route
    declared = getattr(getattr(partial, "endpoint", None), "__pingan_roles__", None)
    if declared is not None:
        return declared
    if scope["type"] == "websocket" or scope.get("method", "GET") in SAFE_METHODS:
        return ALL_STAFF
    return ADMIN_ONLY


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlparse(origin).netloc.lower() == headers.get("host", "").lower()


def client_ip(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


class AuthMiddleware:
    """Pure ASGI (HTTP and WebSocket): authenticate, check the role and, for cookies, the Origin."""

    def __init__(self, app: Any, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = _headers(scope)
        if scope["type"] == "http" and path == METRICS_PATH:
            if self.auth.metrics_allowed(headers.get("authorization")):
                await self.app(scope, receive, send)
            else:
                await _deny(scope, receive, send, 401, "send the scrape token: Authorization: Bearer "
                            "$PINGAN_METRICS_TOKEN (refused when the hub has none)")
            return
        if is_public(path):
            await self.app(scope, receive, send)
            return
        user = await asyncio.to_thread(self._user, scope, headers)
        if user is None:
            await _deny(scope, receive, send, 401, "login required")
            return
        if user.via == "cookie" and (scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS) \
                and not same_origin(headers):
            await _deny(scope, receive, send, 403, "cross-origin request refused")
            return
        roles = route_roles(scope.get("app"), scope)
        if user.role not in roles:
            await _deny(scope, receive, send, 403, f"role {user.role} may not do this")
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    def _user(self, scope: dict[str, Any], headers: dict[str, str]) -> User | None:
        authz = headers.get("authorization", "")
        if authz.lower().startswith("bearer "):
            return self.auth.session_user(authz[7:].strip(), "token")
        if scope["type"] == "websocket":
            token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            if token:
                return self.auth.session_user(token[0], "token")
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is an anonymous caller
            return None
        if COOKIE in cookie:
            return self.auth.session_user(cookie[COOKIE].value, "cookie")
        return None


async def _deny(scope: dict[str, Any], receive: Any, send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # the server answers 403 to a close before accept
        await send({"type": "websocket.close", "code": 4000 + status})


# --- routes ------------------------------------------------------------------------------------
router = APIRouter(tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def current_user(request: Request) -> User:
    user = request.scope.get("state", {}).get("user")
    if user is None:  # only reachable if the middleware is missing
        raise HTTPException(401, "login required")
    return user


@router.post("/api/login")
def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
    """Returns a bearer token and sets the console's session cookie (HttpOnly, SameSite=Strict)."""
    auth: Auth = request.app.state.hub.auth
    headers = _headers(request.scope)
    if "origin" in headers and not same_origin(headers):
        raise HTTPException(403, "cross-origin login refused")
    token, user = auth.login(body.username, body.password, client_ip(request.scope))
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    return {"token": token, "username": user.username, "role": user.role,
            "expires_in_s": int(auth.session_ttl.total_seconds())}


@router.post("/api/logout")
@requires(*ROLES)
def logout(request: Request, response: Response) -> dict[str, Any]:
    auth: Auth = request.app.state.hub.auth
    headers = _headers(request.scope)
    authz = headers.get("authorization", "")
    token = authz[7:].strip() if authz.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if token:
        auth.logout(token)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return {"ok": True}


@router.get("/api/me")
def me(request: Request) -> dict[str, Any]:
    user = current_user(request)
    settings = request.app.state.hub.settings
    return {"username": user.username, "role": user.role, "timezone": settings.timezone,
            "escalate_after_s": settings.escalate_after_s}


@router.get("/api/users")
@requires("admin")
def list_users(request: Request) -> list[dict[str, Any]]:
    return request.app.state.hub.auth.list_users()
