"""Login, logout, the live ticket and the staff list: the auth feature's HTTP routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.api.deps import AuthDep, SettingsDep, UserDep, current_user
from hub.api.models.auth import LiveTicketOut, LoginOut, LogoutOut, Me, StaffUser
from hub.auth.policy import _headers, client_ip, requires, same_origin
from hub.auth.service import COOKIE, LIVE_TICKET_TTL_S, ROLES

__all__ = ["current_user", "router"]  # current_user: hub/api/deps.py's, kept importable from here

# --- routes ------------------------------------------------------------------------------------
router = APIRouter(tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/api/login", response_model=LoginOut)
async def login(body: LoginBody, request: Request, response: Response, auth: AuthDep) -> dict[str, Any]:
    """Returns a bearer token and sets the console's session cookie (HttpOnly, SameSite=Strict).

    503 with Retry-After when too many logins are in flight (checked here, on the loop, before a
    thread is taken), 429 when the username or the address has failed too often (hub/auth/service.py)."""
    headers = _headers(request.scope)
    if "origin" in headers and not same_origin(headers):
        raise HTTPException(403, "cross-origin login refused")
    with auth.admit():
        token, user = await run_in_threadpool(auth.login, body.username, body.password, client_ip(request.scope))
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    return {"token": token, "username": user.username, "role": user.role,
            "expires_in_s": int(auth.session_ttl.total_seconds())}


@router.post("/api/logout", response_model=LogoutOut)
@requires(*ROLES)
def logout(request: Request, response: Response, auth: AuthDep) -> dict[str, Any]:
    headers = _headers(request.scope)
    authz = headers.get("authorization", "")
    token = authz[7:].strip() if authz.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if token:
        auth.logout(token)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return {"ok": True}


@router.post("/api/live/ticket", response_model=LiveTicketOut)
@requires(*ROLES)
def live_ticket(request: Request, user: UserDep, auth: AuthDep) -> dict[str, Any]:
    """A single-use ticket for ``/api/live?ticket=...`` (clients that can send neither the cookie nor an
    Authorization header on a WebSocket); valid for :data:`LIVE_TICKET_TTL_S` seconds."""
    return {"ticket": auth.new_ticket(user, client_ip(request.scope)),
            "expires_in_s": LIVE_TICKET_TTL_S}


@router.get("/api/me", response_model=Me)
def me(user: UserDep, settings: SettingsDep) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "timezone": settings.timezone,
            "escalate_after_s": settings.escalate_after_s}


@router.get("/api/users", response_model=list[StaffUser])
@requires("admin")
def list_users(auth: AuthDep) -> list[dict[str, Any]]:
    return auth.list_users()
