"""The sensitive-period job: makes what the store and the clock say true, once, whenever it runs.

Why a level-triggered round instead of timers: a hub restarted in the middle of a period (or down at its
start or end) must neither miss a start or an end nor push a profile twice. Every round reads the periods
and the push rows and does only what is missing:

- a scheduled period whose window has begun becomes active (a guarded UPDATE: one round wins), audited;
- every in-scope alarm pole gets one ``apply`` row (unique per period, pole and phase): its previous config
  (the newest config.update it applied, kept in the commands table) and the profile pushed through
  :func:`hub.nodes.config_push.push_config` (validated, signed, tried and rolled back by the node). A pole
  offline at the start stays ``pending`` and is pushed when it is back online; a pole whose config the hub
  does not know (never pushed to) or whose zones are already as strict is ``skipped`` with the reason;
- an active period past its end (or a cancelled one) gets one ``revert`` row per pole that applied the
  profile: the previous YAML pushed back the same way, unless someone pushed another config to the pole
  during the period (then it is left as it is, and the row says so);
- the daily report (report.py) for each 08:00 passed;
- the consoles get ``sensitive`` (hub/live/messages.py) with the periods in force whenever that changes.

Escalation does not wait for this job: the escalator asks :meth:`Periods.escalation_overrides` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from hub.alarms.service import HubService
from hub.errors import HubError
from hub.live.messages import SensitivePeriodChanged
from hub.nodes.config_push import list_updates, push_config
from hub.sensitive.periods import LIVE_STATES, Periods
from hub.sensitive.profile import DetectionProfile, apply_profile
from hub.sensitive.report import DailyReports
from hub.store.engine import add_audit, jsonable, now_utc
from hub.store.schema import commands, nodes, sensitive_periods, sensitive_pushes

log = logging.getLogger(__name__)
ACTOR = "sensitive-period"  # the operator named on the commands and audit rows this job makes
# Pushes sent per round: a config.update restarts the pole's agent for its trial, and a district's 2,000 poles
# restarting in the same second would also hit the broker and the hub's ingest together; at 50 a round (every
# PINGAN_SENSITIVE_TICK_S, 5 s) a district's profile is out in a few minutes.
MAX_PUSHES_PER_ROUND = 50
CLAIM_TIMEOUT = timedelta(seconds=30)  # a push claimed this long ago and not recorded: its hub stopped meanwhile


def actor(period_id: str) -> str:
    return f"{ACTOR}:{period_id}"


class Scheduler:
    def __init__(self, periods: Periods, service: HubService, reports: DailyReports,
                 publish: Callable[[list[dict[str, Any]]], None] | None = None,
                 connected: Callable[[], bool] = lambda: True, clock: Callable[[], datetime] = now_utc,
                 max_pushes: int = MAX_PUSHES_PER_ROUND) -> None:
        self.periods = periods
        self.engine = periods.engine
        self.service = service
        self.reports = reports
        self.publish = publish
        self.connected = connected
        self.clock = clock
        self.max_pushes = max_pushes
        self._shown: tuple[str, ...] | None = None  # the ids the consoles were last told about

    # --- one round ----------------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> None:
        now = now or self.clock()
        self._transitions(now)
        with self.engine.connect() as conn:
            active = [dict(r._mapping) for r in conn.execute(select(sensitive_periods).where(
                sensitive_periods.c.state == "active"))]
        for period in active:
            self._ensure_apply_rows(period, now)
            self.reports.run(period, now, partial(self.pushes, period["id"]))
        self._revert_rows(now)
        self._recover_claims(now)
        self._send_pending(now)
        self._announce(now)

    def _transitions(self, now: datetime) -> None:
        with self.engine.begin() as conn:
            for row in conn.execute(select(sensitive_periods).where(sensitive_periods.c.state.in_(LIVE_STATES))).all():
                if row.state == "scheduled" and row.ends_at <= now:
                    new, action = "ended", "sensitive.missed"  # the hub was down for the whole window
                elif row.state == "scheduled" and row.starts_at <= now:
                    new, action = "active", "sensitive.start"
                elif row.state == "active" and row.ends_at <= now:
                    new, action = "ended", "sensitive.end"
                else:
                    continue
                values: dict[str, Any] = {"state": new}
                values["activated_at" if new == "active" else "ended_at"] = now
                done = conn.execute(update(sensitive_periods).where(
                    sensitive_periods.c.id == row.id, sensitive_periods.c.state == row.state).values(**values)).rowcount
                if done:
                    add_audit(conn, "system", action, row.id, {"scope": row.scope, "grids": row.grids})
                    log.warning("sensitive period %s: %s", row.id, new)
        if self.reports is not None:  # the last day's 08:00 report of a period that ended meanwhile
            with self.engine.connect() as conn:
                ended = [dict(r._mapping) for r in conn.execute(select(sensitive_periods).where(
                    sensitive_periods.c.state == "ended", sensitive_periods.c.ended_at >= now))]
            for period in ended:
                self.reports.run(period, now, partial(self.pushes, period["id"]))

    # --- the profile at the start ----------------------------------------------------------------------------
    def _poles(self, period: dict[str, Any]) -> list[str]:
        q = select(nodes.c.id).where(nodes.c.kind == "alarm_post", nodes.c.state != "removed")
        if period["scope"] == "grids":
            q = q.where(nodes.c.grid.in_(period["grids"] or []))
        with self.engine.connect() as conn:
            return list(conn.execute(q.order_by(nodes.c.id)).scalars())

    def _ensure_apply_rows(self, period: dict[str, Any], now: datetime) -> None:
        profile = DetectionProfile.model_validate(period["profile"] or {})
        if profile.is_empty():
            return
        with self.engine.connect() as conn:
            have = set(conn.execute(select(sensitive_pushes.c.node).where(
                sensitive_pushes.c.period_id == period["id"], sensitive_pushes.c.phase == "apply")).scalars())
        for node in self._poles(period):
            if node in have:
                continue
            base = self._own_config(self._applied(node))
            if base is None:
                state, reason, base_id = "skipped", ("the hub does not know this pole's config (it was never pushed "
                                                     "one): push its config from its node page once"), None
            else:
                new, why = apply_profile(base["yaml"], profile)
                state, reason, base_id = ("pending", why, base["command_id"]) if new else ("skipped", why, None)
            self._insert(period["id"], node, "apply", state, reason, base_id, now)

    def _applied(self, node: str) -> dict[str, Any] | None:
        """The config in effect on the pole as far as the hub knows: the newest config.update it applied."""
        try:
            ups = list_updates(self.service, node, 500)
        except HubError:
            return None
        return next((u for u in ups if u["state"] == "applied" and u.get("yaml")), None)

    def _own_config(self, applied: dict[str, Any] | None) -> dict[str, Any] | None:
        """The pole's own config under ``applied``: when that is another period's profile (back-to-back periods
        over the same pole), the config that period started from, so the profile is never stacked on a profile
        and this period's revert restores what the pole really had."""
        if applied is None or not str(applied.get("operator") or "").startswith(ACTOR + ":"):
            return applied
        with self.engine.connect() as conn:
            base_id = conn.execute(select(sensitive_pushes.c.base_command).where(
                sensitive_pushes.c.command_id == applied["command_id"], sensitive_pushes.c.phase == "apply")).scalar()
            args = conn.execute(select(commands.c.args).where(commands.c.id == base_id)).scalar() if base_id else None
        if not args or not args.get("yaml"):
            return applied  # a revert (it carries the pole's own text) or a row gone: what the pole has
        return {"command_id": base_id, "yaml": args["yaml"], "operator": "(before the previous period)"}

    def _insert(self, period_id: str, node: str, phase: str, state: str, reason: str | None,
                base: str | None, now: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(sensitive_pushes.insert().values(period_id=period_id, node=node, phase=phase,
                                                              state=state, reason=reason, base_command=base,
                                                              updated_at=now))
                add_audit(conn, "system", f"sensitive.{phase}.{state}", node, {"period": period_id, "reason": reason})
        except IntegrityError:
            pass  # another round made it first

    # --- the revert at the end ------------------------------------------------------------------------------
    def _revert_rows(self, now: datetime) -> None:
        done = {p["id"] for p in self.periods.in_force(now)}
        with self.engine.connect() as conn:
            over = select(sensitive_periods.c.id).where(sensitive_periods.c.state.in_(("ended", "cancelled")))
            rows = conn.execute(select(sensitive_pushes).where(
                sensitive_pushes.c.phase == "apply", sensitive_pushes.c.period_id.in_(over))).all()
            reverted = {(r.period_id, r.node) for r in conn.execute(select(
                sensitive_pushes.c.period_id, sensitive_pushes.c.node).where(sensitive_pushes.c.phase == "revert"))}
        for row in rows:
            if row.period_id in done or (row.period_id, row.node) in reverted:
                continue
            if row.state == "pending":  # never reached the pole: nothing to take back
                self._set(row.id, "skipped", "the period ended before the pole came online: nothing was pushed", now)
                continue
            if row.state != "sent":
                continue
            ups = {u["command_id"]: u for u in list_updates(self.service, row.node, 500)}
            mine = ups.get(row.command_id or "")
            outcome = mine["state"] if mine else "expired"
            if outcome in ("sent", "accepted"):
                continue  # still being tried on the pole: decide when it says applied or rolled back
            if outcome != "applied":
                self._insert(row.period_id, row.node, "revert", "skipped",
                             f"the profile never took effect on the pole ({outcome}): nothing to take back",
                             None, now)
                continue
            taker = self._taken_over(row.period_id, row.node, done)
            if taker is not None:
                self._insert(row.period_id, row.node, "revert", "skipped", f"period {taker} follows on this pole: "
                             "it restores the pole's config at its end", None, now)
                continue
            current = self._applied(row.node)
            if current is not None and current["command_id"] != row.command_id:
                self._insert(row.period_id, row.node, "revert", "skipped",
                             f"the pole's config was changed during the period (by {current['operator']}): left as "
                             "it is", None, now)
                continue
            self._insert(row.period_id, row.node, "revert", "pending", "the pole's previous config", row.base_command,
                         now)

    def _taken_over(self, period_id: str, node: str, in_force: set[str]) -> str | None:
        """A period in force now that already has this pole (its apply row started from the same config)."""
        if not in_force - {period_id}:
            return None
        with self.engine.connect() as conn:
            return conn.execute(select(sensitive_pushes.c.period_id).where(
                sensitive_pushes.c.node == node, sensitive_pushes.c.phase == "apply",
                sensitive_pushes.c.period_id.in_(in_force - {period_id}),
                sensitive_pushes.c.state.in_(("pending", "sending", "sent")))).scalar()

    # --- sending ---------------------------------------------------------------------------------------------
    def _send_pending(self, now: datetime) -> None:
        if not self.connected():
            return  # a push that cannot go now stays pending
        with self.engine.connect() as conn:
            rows = conn.execute(select(sensitive_pushes, nodes.c.state.label("node_state"))
                                .join(nodes, nodes.c.id == sensitive_pushes.c.node)
                                .where(sensitive_pushes.c.state == "pending", nodes.c.state == "online")
                                .order_by(sensitive_pushes.c.id).limit(self.max_pushes)).all()
            periods = {r.id: dict(r._mapping) for r in conn.execute(select(sensitive_periods).where(
                sensitive_periods.c.id.in_({r.period_id for r in rows})))}
        for row in rows:
            period = periods[row.period_id]
            if row.phase == "apply" and period["state"] != "active":
                continue  # ended meanwhile: _revert_rows marks it skipped
            with self.engine.begin() as conn:  # claim it (a hub stopped mid-push: _recover_claims)
                claimed = conn.execute(update(sensitive_pushes).where(
                    sensitive_pushes.c.id == row.id, sensitive_pushes.c.state == "pending").values(
                    state="sending", updated_at=now)).rowcount
                base = conn.execute(select(commands.c.args).where(commands.c.id == row.base_command)).scalar()
            if not claimed:
                continue
            base_yaml = (base or {}).get("yaml")
            try:
                if not base_yaml:
                    raise HubError("the pole's previous config is no longer in the store / "
                                   "中心已不再保存该立柱之前的配置")
                text = base_yaml
                if row.phase == "apply":
                    new, why = apply_profile(base_yaml, DetectionProfile.model_validate(period["profile"] or {}))
                    if new is None:
                        raise HubError(why)
                    text = new
                sent = push_config(self.service, row.node, text, actor(row.period_id))
            except (HubError, ValueError) as exc:
                self._set(row.id, "failed", str(exc)[:500], now)
                log.error("sensitive period %s: %s push to %s failed: %s", row.period_id, row.phase, row.node, exc)
                continue
            with self.engine.begin() as conn:
                conn.execute(update(sensitive_pushes).where(sensitive_pushes.c.id == row.id).values(
                    state="sent", command_id=sent["command_id"], updated_at=now))
                add_audit(conn, "system", f"sensitive.{row.phase}.sent", row.node,
                          {"period": row.period_id, "command_id": sent["command_id"], "sha256": sent["sha256"]})

    def _recover_claims(self, now: datetime) -> None:
        """Rows claimed for sending by a hub that stopped before it recorded the push: the commands table says
        whether the push went (then it is ``sent``, with that command) or not (then ``pending`` again)."""
        with self.engine.connect() as conn:
            stuck = conn.execute(select(sensitive_pushes).where(
                sensitive_pushes.c.state == "sending", sensitive_pushes.c.updated_at < now - CLAIM_TIMEOUT)).all()
        for row in stuck:
            with self.engine.begin() as conn:
                sent = conn.execute(select(commands.c.id).where(
                    commands.c.node == row.node, commands.c.name == "config.update",
                    commands.c.operator == actor(row.period_id), commands.c.issued_at >= row.updated_at - CLAIM_TIMEOUT,
                    commands.c.id.not_in(select(sensitive_pushes.c.command_id).where(
                        sensitive_pushes.c.command_id.is_not(None))))
                    .order_by(commands.c.issued_at.desc())).scalar()
                conn.execute(update(sensitive_pushes).where(sensitive_pushes.c.id == row.id).values(
                    state="sent" if sent else "pending", command_id=sent, updated_at=now))
                add_audit(conn, "system", f"sensitive.{row.phase}.{'sent' if sent else 'pending'}", row.node,
                          {"period": row.period_id, "command_id": sent, "recovered": True})

    def _set(self, row_id: int, state: str, reason: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(sensitive_pushes).where(sensitive_pushes.c.id == row_id)).first()
            conn.execute(update(sensitive_pushes).where(sensitive_pushes.c.id == row_id).values(
                state=state, reason=reason, updated_at=now))
            if row is not None:
                add_audit(conn, "system", f"sensitive.{row.phase}.{state}", row.node,
                          {"period": row.period_id, "reason": reason})

    # --- reading and the banner ------------------------------------------------------------------------------
    def pushes(self, period_id: str) -> list[dict[str, Any]]:
        """Each pole's apply and revert rows, with the node's own word on each push (hub/nodes/config_push.py)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(sensitive_pushes).where(sensitive_pushes.c.period_id == period_id)
                                .order_by(sensitive_pushes.c.node, sensitive_pushes.c.id)).all()
        out = []
        outcomes: dict[str, dict[str, Any]] = {}
        for r in rows:
            item = jsonable(r)
            item.pop("id", None)
            item["outcome"] = None
            if r.command_id:
                if r.node not in outcomes:
                    try:
                        outcomes[r.node] = {u["command_id"]: u for u in list_updates(self.service, r.node, 500)}
                    except HubError:
                        outcomes[r.node] = {}
                u = outcomes[r.node].get(r.command_id)
                item["outcome"] = u["state"] if u else None
            out.append(item)
        return out

    def _announce(self, now: datetime) -> None:
        active = [jsonable_period(p) for p in self.periods.in_force(now)]
        ids = tuple(sorted(p["id"] for p in active))
        if ids == self._shown:
            return
        self._shown = ids
        if self.publish is not None:
            self.publish([SensitivePeriodChanged(active=active).out()])


def jsonable_period(p: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in p.items()}
