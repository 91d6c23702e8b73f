"""Responders meet hub/notify: a dispatch also goes out through the notify channels, and notify's
``grid:``/``team:`` recipients come from the duty roster.

Two small adapters rather than one feature importing the other's internals: hub/responders knows
a ``Notifier`` with one method (``send``), hub/notify knows a group resolver; app wiring joins them.
"""

from __future__ import annotations

import logging
from typing import Any

from hub.notify.models import Notice
from hub.notify.service import Notifier as Channels
from hub.responders.service import Responders

log = logging.getLogger(__name__)


class ChannelNotifier:
    """``Responders``' notifier over hub/notify: the task as a notice to that one responder, handed to the
    channels' loop and never waited for (a channel failing or hanging never holds up the dispatch)."""

    def __init__(self, channels: Channels, public_url: str = "") -> None:
        self.channels = channels
        self.public_url = public_url.rstrip("/")

    def notice(self, task: dict[str, Any]) -> Notice:
        place = task.get("place") or task.get("node") or ""
        return Notice(alarm=task.get("alarm_id"), node=task.get("node") or "", place=place,
                      grid=task.get("grid") or "", kind=task.get("kind") or "",
                      url=f"{self.public_url}/r/" if self.public_url else None,
                      text=f"报警任务 / Alarm task: {place} ({task.get('grid') or '-'}), "
                           f"请在 {task.get('accept_by', '')[11:19]} 前接受 / accept by then")

    def send(self, responder: str, task: dict[str, Any]) -> None:
        self.channels.submit([responder], self.notice(task))


class RosterGroups:
    """notify's group resolver: ``team:ID`` is the team's responders, ``grid:ID`` the responders on duty
    whose team covers that grid (the same people a dispatch would offer the alarm to)."""

    def __init__(self, responders: Responders) -> None:
        self.responders = responders

    def __call__(self, kind: str, ident: str) -> list[str]:
        people = self.responders.list_responders()
        if kind == "team":
            return [p["username"] for p in people if p.get("team") == ident]
        grids = {t["id"]: set(t.get("grids") or []) for t in self.responders.list_teams()}
        return [p["username"] for p in people if ident in grids.get(p.get("team", ""), set()) and p.get("on_duty")]
