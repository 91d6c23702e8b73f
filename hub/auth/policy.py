"""The access policy every HTTP and WebSocket route goes through (default deny).

A route's roles come from :func:`requires` on its endpoint; :class:`AuthMiddleware` wraps the whole
application, so a router added later by anyone is protected without doing anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlparse

from starlette.routing import Match

from hub.auth.service import (
    ADMIN_ONLY,
    ALL_ROLES,
    ALL_STAFF,
    COOKIE,
    METRICS_PATH,
    PUBLIC_PATHS,
    PUBLIC_PREFIXES,
    ROLES,
    SAFE_METHODS,
    Auth,
    LoginBusy,
    User,
)


def requires(*roles: str) -> Callable[[Any], Any]:
    """Declare which roles may call an endpoint: ``@requires("operator", "admin")`` under the route decorator."""
    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; use {ROLES}")

    def mark(endpoint: Any) -> Any:
        endpoint.__pingan_roles__ = frozenset(roles)
        return endpoint

    return mark


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


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlparse(origin).netloc.lower() == headers.get("host", "").lower()


def client_ip(scope: Mapping[str, Any]) -> str:
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
        if path == "/api/login" and self.auth.busy():  # a flood: refused before FastAPI reads the body
            await _deny(scope, receive, send, 503, LoginBusy.DETAIL)
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
        if scope["type"] == "websocket":  # never ?token=: a URL lands in access logs (a ticket is spent at once)
            ticket = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("ticket")
            if ticket:
                return self.auth.redeem_ticket(ticket[0])
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
    if status == 503:
        headers.append((b"retry-after", b"1"))
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


