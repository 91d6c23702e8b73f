"""``/api/history/alarms`` and ``/api/history/events``: the console's history search (hub/history/search.py).
Operators, installers and admins (installers read events as they do on ``/api/events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from hub.api.deps import EngineDep
from hub.api.models.history import ClosedAlarmPage, PastEventPage
from hub.auth.policy import requires
from hub.history.search import closed_alarms, past_events

router = APIRouter(tags=["history"])


Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Text = Annotated[str | None, Query(max_length=64)]


@router.get("/api/history/alarms", response_model=ClosedAlarmPage, response_model_exclude_unset=True)
@requires("operator", "installer", "admin")
def history_alarms(engine: EngineDep, node: Text = None, kind: Text = None, grid: Text = None,
                   since: datetime | None = None, until: datetime | None = None, outcome: Text = None,
                   limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Closed (resolved) alarms, newest first, with how many snapshots and burst frames each has."""
    return closed_alarms(engine, node=node, kind=kind, grid=grid, since=since, until=until,
                         outcome=outcome, limit=limit, offset=offset)


@router.get("/api/history/events", response_model=PastEventPage)
@requires("operator", "installer", "admin")
def history_events(engine: EngineDep, node: Text = None, kind: Text = None, grid: Text = None,
                   since: datetime | None = None, until: datetime | None = None,
                   limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Past events, newest first."""
    return past_events(engine, node=node, kind=kind, grid=grid, since=since, until=until,
                       limit=limit, offset=offset)
