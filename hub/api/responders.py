"""Responders and dispatch over HTTP (issue 18; hub/responders/service.py says why it works this way).

Three audiences, each with its own roles (hub/auth/policy.py; a route without ``@requires`` is never
open to a responder):

* operators: who is on duty for an alarm, nearest first; offer the task; its steps and photos;
* admins: teams, their grids and weekly shifts, and which login belongs to which team;
* responders (their phone, ``/r/``): duty, position, their tasks and each step of one, photos, and
  their own live stream. Another responder's task is 403.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as UrlPath
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hub import __version__
from hub.alarms.service import OUTCOMES
from hub.api.deps import ResponderServiceDep, SettingsDep, TaskStreamsDep, UserDep
from hub.api.models import Refused
from hub.api.models.responders import (
    Candidate,
    DispatchListed,
    DispatchReport,
    PhotoListed,
    PhotoOut,
    PositionStored,
    Responder,
    ResponderMe,
    Task,
    Team,
)
from hub.api.streaming import pump
from hub.auth.policy import requires
from hub.live.messages import Hello
from hub.reports.service import parse_range
from hub.responders.service import KINDS, BadInput, Forbidden, TooLarge
from hub.store.engine import now_utc

# every route here may answer 422 with a sentence (BadInput) as well as FastAPI's list of problems
router = APIRouter(tags=["responders"], responses={422: {"model": Refused, "description": "Bad input"}})
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
OPS = ("operator", "admin")


# --- bodies and answers ---------------------------------------------------------------------------
class ShiftBody(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday, in the district's time zone")
    start: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["08:00"])
    end: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["20:00"], description="Before start: runs past midnight")


class TeamBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal[KINDS]  # type: ignore[valid-type]
    grids: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(max_length=200)
    shifts: list[ShiftBody] | None = Field(default=None, max_length=100, description="Replaces the team's shifts")


class ResponderBody(BaseModel):
    name: str = Field(default="", max_length=100)
    team: str = Field(min_length=1, max_length=32)
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]
    phone: str | None = Field(default=None, max_length=32,
                              description="Kept in the one phone book (notify contacts); absent: unchanged, '': none")


class DispatchBody(BaseModel):
    to: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)
    team: str | None = Field(default=None, max_length=32)
    nearest: int = Field(default=0, ge=0, le=50, description="Also offer to the N nearest not yet asked")


class DutyBody(BaseModel):
    on: bool
    consent: bool = Field(default=False, description="Share the phone's position while on duty")


class PositionBody(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy: float | None = Field(default=None, ge=0, le=100_000)


class DeclineBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class SceneBody(BaseModel):
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ResolveBody(BaseModel):
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)


# --- operators --------------------------------------------------------------------------------------
@router.get("/api/alarms/{alarm_id}/responders", response_model=list[Candidate])
@requires(*OPS)
def candidates(alarm_id: str, r: ResponderServiceDep) -> list[dict[str, Any]]:
    """On-duty responders of the alarm's grid, nearest first (``distance_m``, ``fix_age_s``)."""
    return r.candidates(alarm_id)


@router.post("/api/alarms/{alarm_id}/dispatches", response_model=list[Task], response_model_exclude_unset=True)
@requires(*OPS)
def dispatch(alarm_id: str, body: DispatchBody, r: ResponderServiceDep, user: UserDep) -> list[dict[str, Any]]:
    return r.dispatch(alarm_id, user.username, to=body.to, team=body.team, nearest=body.nearest)


@router.get("/api/alarms/{alarm_id}/dispatches", response_model=list[DispatchListed])
@requires("operator", "installer", "admin")
def dispatches_of(alarm_id: str, r: ResponderServiceDep) -> list[dict[str, Any]]:
    return r.for_alarm(alarm_id)


@router.get("/api/alarms/{alarm_id}/photos", response_model=list[PhotoListed])
@requires("operator", "installer", "admin")
def photos_of(alarm_id: str, r: ResponderServiceDep) -> list[dict[str, Any]]:
    return r.photos(alarm_id)


@router.get("/api/alarms/{alarm_id}/photos/{photo_id}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
@requires("operator", "installer", "admin")
def photo(alarm_id: str, photo_id: Annotated[int, UrlPath(ge=0, le=2**63 - 1)], r: ResponderServiceDep) -> Response:
    data, content_type = r.photo(alarm_id, photo_id)
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})


def _aware(t: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as every time the hub stores)."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


@router.get("/api/reports/responders", response_model=DispatchReport)
@requires("operator", "installer", "admin")
def report(r: ResponderServiceDep, settings: SettingsDep, since: datetime | None = None, until: datetime | None = None,
           start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD (centre's zone)")] = None,
           end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None,
           period: Annotated[str | None, Query(pattern="^(today|yesterday|week)$")] = None) -> dict[str, Any]:
    """Per team and responder: time to accept / on scene / resolve (p50, p90 from the offer), declines,
    offers that expired, alarms nobody accepted. The window: ``since``/``until`` (ISO times), or the console's
    ``from``/``to``/``period`` as /api/reports/summary takes them; default the last 7 days."""
    if start or end or period:
        tz = settings.timezone
        try:
            since, until, _ = parse_range(tz, start, end, period)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    until = _aware(until) or now_utc()
    since = _aware(since) or until - timedelta(days=7)
    if since >= until:
        raise HTTPException(422, "since must be before until")
    return r.report(since, until)


# --- admins ----------------------------------------------------------------------------------------
@router.get("/api/teams", response_model=list[Team], response_model_exclude_unset=True)
@requires("operator", "installer", "admin")
def teams(r: ResponderServiceDep) -> list[dict[str, Any]]:
    return r.list_teams()


@router.put("/api/teams/{team_id}", response_model=Team, response_model_exclude_unset=True)
@requires("admin")
def set_team(team_id: Annotated[str, UrlPath(pattern=r"^[A-Za-z0-9_.-]{1,32}$")], body: TeamBody,
             r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    out = r.set_team(team_id, body.name, body.kind, body.grids, user.username)
    if body.shifts is not None:
        out["shifts"] = r.set_shifts(team_id, [(s.weekday, s.start, s.end) for s in body.shifts], user.username)
    return out


@router.get("/api/responders", response_model=list[Responder])
@requires("operator", "installer", "admin")
def responders(r: ResponderServiceDep) -> list[dict[str, Any]]:
    return r.list_responders()


@router.put("/api/responders/{username}", response_model=Responder)
@requires("admin")
def set_responder(username: str, body: ResponderBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.set_responder(username, body.name, body.team, body.kind, body.phone, user.username)


# --- the responder's phone ----------------------------------------------------------------------------
@router.get("/api/responder/me", response_model=ResponderMe)
@requires("responder")
def me(r: ResponderServiceDep, user: UserDep, settings: SettingsDep) -> dict[str, Any]:
    out = r.me(user.username)
    out["accept_within_s"] = settings.accept_within_s
    return out


@router.post("/api/responder/duty", response_model=Responder)
@requires("responder")
def duty(body: DutyBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.check_in(user.username, body.consent) if body.on else r.check_out(user.username)


@router.post("/api/responder/position", response_model=PositionStored)
@requires("responder")
def position(body: PositionBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    """409 and nothing stored when off duty or without consent."""
    return r.record_position(user.username, body.lat, body.lon, body.accuracy)


@router.get("/api/responder/tasks", response_model=list[Task], response_model_exclude_unset=True)
@requires("responder")
def my_tasks(r: ResponderServiceDep, user: UserDep) -> list[dict[str, Any]]:
    return r.tasks_of(user.username)


@router.get("/api/responder/tasks/{dispatch_id}", response_model=Task, response_model_exclude_unset=True)
@requires("responder")
def my_task(dispatch_id: str, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.task(dispatch_id, user.username)


@router.get("/api/responder/tasks/{dispatch_id}/snapshot.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
@requires("responder")
def my_snapshot(dispatch_id: str, r: ResponderServiceDep, user: UserDep) -> Response:
    return Response(r.snapshot_for(dispatch_id, user.username), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.post("/api/responder/tasks/{dispatch_id}/accept", response_model=Task, response_model_exclude_unset=True)
@requires("responder")
def accept(dispatch_id: str, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.accept(dispatch_id, user.username)


@router.post("/api/responder/tasks/{dispatch_id}/decline", response_model=Task, response_model_exclude_unset=True)
@requires("responder")
def decline(dispatch_id: str, body: DeclineBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.decline(dispatch_id, user.username, body.reason)


@router.post("/api/responder/tasks/{dispatch_id}/on_scene", response_model=Task, response_model_exclude_unset=True)
@requires("responder")
def on_scene(dispatch_id: str, body: SceneBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.on_scene(dispatch_id, user.username, body.lat, body.lon)


@router.post("/api/responder/tasks/{dispatch_id}/resolve", response_model=Task, response_model_exclude_unset=True)
@requires("responder")
def resolve(dispatch_id: str, body: ResolveBody, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    return r.resolve(dispatch_id, user.username, body.outcome, body.note)


@router.post("/api/responder/tasks/{dispatch_id}/photos", response_model=PhotoOut, status_code=201)
@requires("responder")
async def add_photo(dispatch_id: str, request: Request, r: ResponderServiceDep, user: UserDep) -> dict[str, Any]:
    """The photo is the request body (``Content-Type: image/jpeg``, ``image/png`` or ``image/webp``), shrunk on
    the phone first. Over ``photo_max_bytes``: 413 before it is all read; not an image: 422; nothing stored."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > r.photo_max_bytes:
        raise TooLarge(f"the photo is over {r.photo_max_bytes // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > r.photo_max_bytes:
            raise TooLarge(f"the photo is over {r.photo_max_bytes // (1024 * 1024)} MB")
        chunks.append(chunk)
    return await asyncio.to_thread(r.add_photo, dispatch_id, user.username, b"".join(chunks))


@router.websocket("/api/responder/live")
@requires("responder")
async def live(websocket: WebSocket, streams: TaskStreamsDep) -> None:
    """This responder's tasks as they are offered and change (``TaskMessage``); nothing of anyone else's."""
    user = websocket.scope["state"]["user"]
    await websocket.accept()
    client = streams.subscribe(user.username)
    try:
        await websocket.send_json(Hello(version=__version__).out())
        await pump(websocket, client.get)
    except WebSocketDisconnect:
        pass
    finally:
        streams.unsubscribe(user.username, client)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()


# --- the installable phone app --------------------------------------------------------------------------
@router.get("/r", include_in_schema=False)
def app_page_slash() -> RedirectResponse:
    return RedirectResponse("/r/", status_code=308)


@router.get("/r/", include_in_schema=False)
def app_page() -> FileResponse:
    return FileResponse(WEB_DIR / "responder.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/r/manifest.webmanifest", include_in_schema=False)
def manifest() -> FileResponse:
    return FileResponse(WEB_DIR / "responder.webmanifest", media_type="application/manifest+json")


@router.get("/r/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    return FileResponse(WEB_DIR / "responder-sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})


def setup_responders(app: FastAPI) -> None:
    """The routes and the answers for this feature's errors: 403 not yours, 413 too large, 422 bad input."""
    app.include_router(router)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, exc: TooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(BadInput)
    async def _bad(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)
