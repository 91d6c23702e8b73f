"""Administration from the console (issue 17): staff accounts (add, role, disable, reset password) and the
audit log with filters and CSV export. Admins only. Every change is audited with the admin's name."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from hub.api.deps import AuthDep, EngineDep, UserDep
from hub.api.models import Refused
from hub.api.models.auth import StaffUser
from hub.api.models.staff import AuditPage
from hub.auth.audit_log import audit_csv, audit_page
from hub.auth.policy import requires
from hub.auth.service import ROLES, USERNAME_PATTERN, Auth, AuthError

router = APIRouter(tags=["administration"])


class NewUser(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN)
    role: str
    password: str = Field(min_length=8, max_length=1024)


class UserChange(BaseModel):
    role: str | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


REFUSED: dict[int | str, dict[str, Any]] = {422: {"model": Refused, "description": "A bad role or password"}}


def _role(role: str) -> str:
    if role not in ROLES:
        raise HTTPException(422, f"role must be one of {', '.join(ROLES)} / 角色必须是 {', '.join(ROLES)}")
    return role


@router.post("/api/users", status_code=201, response_model=StaffUser, response_model_exclude_unset=True,
             responses=REFUSED)
@requires("admin")
def add_user(body: NewUser, auth: AuthDep, me: UserDep) -> dict[str, Any]:
    if any(u["username"] == body.username for u in auth.list_users()):
        raise HTTPException(409, f"user {body.username} exists / 用户 {body.username} 已存在")
    try:
        with auth.admit():  # argon2 takes ~64 MiB: as many at once as logins may
            auth.add_user(body.username, body.password, _role(body.role), actor=me.username)
    except AuthError as exc:
        raise HTTPException(422, str(exc)) from None
    return next(u for u in auth.list_users() if u["username"] == body.username)


@router.post("/api/users/{username}", response_model=StaffUser, response_model_exclude_unset=True,
             responses=REFUSED)
@requires("admin")
def change_user(username: str, body: UserChange, auth: AuthDep, admin: UserDep) -> dict[str, Any]:
    """Change a role, disable or enable, or set a new password (its sessions end). An admin cannot disable
    or demote themself: the last admin would lock the centre out of its own console."""
    me = admin.username
    user = next((u for u in auth.list_users() if u["username"] == username), None)
    if user is None:
        raise HTTPException(404, f"no user {username} / 没有用户 {username}")
    if username == me and (body.disabled or (body.role and body.role != "admin")):
        raise HTTPException(409, "you cannot disable or demote yourself / 不能停用或降级自己的账号")
    try:
        _apply(auth, username, user, body, me)
    except AuthError as exc:
        raise HTTPException(422, str(exc)) from None
    return next(u for u in auth.list_users() if u["username"] == username)


def _apply(auth: Auth, username: str, user: dict[str, Any], body: UserChange, me: str) -> None:
    if body.role and body.role != user["role"]:
        auth.set_role(username, _role(body.role), actor=me)
    if body.password:
        with auth.admit():  # argon2 takes ~64 MiB: as many at once as logins may
            auth.set_password(username, body.password, actor=me)
    if body.disabled is not None and body.disabled != user["disabled"]:
        auth.set_disabled(username, body.disabled, actor=me)


Text = Annotated[str | None, Query(max_length=128)]


@router.get("/api/audit", response_model=AuditPage)
@requires("admin")
def audit_log(engine: EngineDep, actor: Text = None, action: Text = None, target: Text = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    """Newest first; ``action`` ending in a dot ("user.") matches every action under it."""
    return audit_page(engine, actor=actor, action=action, target=target, since=since,
                      until=until, limit=limit, offset=offset)


@router.get("/api/audit.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
@requires("admin")
def audit_export(engine: EngineDep, actor: Text = None, action: Text = None, target: Text = None,
                 since: datetime | None = None, until: datetime | None = None) -> Response:
    body = audit_csv(engine, actor=actor, action=action, target=target, since=since,
                     until=until)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
