"""The Notifier: one entry point that reaches people through the channels in order, recording each try.

``await notifier.notify(["wang", "grid:G01"], Notice(...))`` resolves the recipients (user names; a
``grid:``/``team:`` entry through :attr:`Notifier.groups`, the hook the responders' duty roster fills),
then tries the first channel for everyone, the next channel for those the first did not reach, and so
on. Each channel's send is bounded by ``notify_timeout_s`` (a push service or robot that accepts the
connection and never answers costs that long, once, for all its recipients, and the next channel
follows). Every try is a row in ``notify_deliveries`` (sent/failed/skipped, why, timings), listed per
alarm by ``GET /api/alarms/{id}/deliveries``; a recipient no channel reached is told to the consoles
live (``{"type": "notify.failed"}``).

The alarm path never waits: :meth:`Notifier.submit` hands the work to the event loop from any thread
and returns at once; the deliveries are written off the loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from hub.config import HubSettings
from hub.live.messages import NotifyFailed
from hub.notify.channels import SKIP, Channel, DingTalkRobot, SmsGateway, WebPush, WeComRobot, describe
from hub.notify.models import Delivery, Notice, Recipient
from hub.store.engine import now_utc
from hub.store.schema import notify_contacts, notify_deliveries, push_subscriptions, users

log = logging.getLogger(__name__)
GroupResolver = Callable[[str, str], list[str]]  # ("grid" | "team", id) -> usernames


class Subscriptions:
    """Browsers' Web Push subscriptions, per user (a user may have a phone and a tablet)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, endpoint: str, p256dh: str, auth: str, user_agent: str | None) -> None:
        with self.engine.begin() as conn:  # an endpoint belongs to one browser: a new login there takes it over
            conn.execute(delete(push_subscriptions).where(push_subscriptions.c.endpoint == endpoint))
            conn.execute(push_subscriptions.insert().values(endpoint=endpoint, username=username, p256dh=p256dh,
                                                            auth=auth, user_agent=(user_agent or "")[:200],
                                                            created=now_utc()))

    def remove(self, endpoint: str, username: str | None = None) -> int:
        q = delete(push_subscriptions).where(push_subscriptions.c.endpoint == endpoint)
        if username is not None:
            q = q.where(push_subscriptions.c.username == username)
        with self.engine.begin() as conn:
            return conn.execute(q).rowcount or 0

    def of_users(self, usernames: list[str]) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(push_subscriptions).where(push_subscriptions.c.username.in_(usernames))
                                .order_by(push_subscriptions.c.last_ok.desc(), push_subscriptions.c.created.desc()))
            for row in rows:
                out.setdefault(row.username, []).append({"endpoint": row.endpoint, "p256dh": row.p256dh,
                                                         "auth": row.auth})
        return out

    def count(self, username: str) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(push_subscriptions.c.endpoint)
                                    .where(push_subscriptions.c.username == username)).all())

    def mark_ok(self, endpoint: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(push_subscriptions).where(push_subscriptions.c.endpoint == endpoint)
                         .values(last_ok=now_utc()))


def build_channels(settings: HubSettings, engine: Engine) -> list[Channel]:
    """The configured channels in ``notify_order``; one named there without its settings is left out."""
    made: dict[str, Channel] = {}
    for name in settings.notify_order.split(","):
        if name == "webpush":
            key = settings.notify_vapid_key_file or settings.data_dir / "notify" / "vapid.pem"
            made[name] = WebPush(key, settings.notify_vapid_subject, Subscriptions(engine))
        elif name == "wecom" and settings.notify_wecom_webhook:
            made[name] = WeComRobot(settings.notify_wecom_webhook)
        elif name == "dingtalk" and settings.notify_dingtalk_webhook:
            made[name] = DingTalkRobot(settings.notify_dingtalk_webhook, settings.notify_dingtalk_secret)
        elif name == "sms" and settings.notify_sms_url:
            made[name] = SmsGateway(settings.notify_sms_url, settings.notify_sms_token, settings.notify_sms_template,
                                    settings.notify_sms_body)
        elif name:
            log.info("notify channel %s is in PINGAN_NOTIFY_ORDER but not configured: left out", name)
    return list(made.values())


class Notifier:
    def __init__(self, engine: Engine, channels: list[Channel], *, timeout_s: float = 4,
                 publish: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.engine = engine
        self.channels = channels
        self.timeout_s = timeout_s
        self.publish = publish  # the consoles' live stream (LiveHub.publish_threadsafe)
        self.groups: GroupResolver | None = None  # the duty roster's hook: grid/team -> usernames
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: HubSettings, engine: Engine,
                      publish: Callable[[list[dict[str, Any]]], None] | None = None) -> Notifier:
        return cls(engine, build_channels(settings, engine), timeout_s=settings.notify_timeout_s, publish=publish)

    @property
    def webpush(self) -> WebPush | None:
        return next((c for c in self.channels if isinstance(c, WebPush)), None)

    # --- lifecycle --------------------------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # one pool per hub: a fan-out reuses its connections
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), follow_redirects=False,
                                             limits=httpx.Limits(max_connections=100))
        return self._client

    def submit(self, recipients: list[str], notice: Notice) -> concurrent.futures.Future[list[Delivery]]:
        """From any thread (the ingest writer, a request): start the delivery and return at once."""
        if self._loop is None:
            raise RuntimeError("Notifier.bind(loop) first (the hub's lifespan does)")
        return asyncio.run_coroutine_threadsafe(self.notify(recipients, notice), self._loop)

    # --- the one entry point -----------------------------------------------------------------------------
    async def notify(self, recipients: list[str], notice: Notice) -> list[Delivery]:
        """Reach each recipient through the first channel that works; every try recorded and returned."""
        people, unknown = await asyncio.to_thread(self._resolve, recipients)
        deliveries: list[Delivery] = []
        now = now_utc()
        for name, problem in unknown:
            deliveries.append(self._row(notice, name, "-", 0, "failed", problem, now, now))
        attempts: dict[str, int] = {}
        pending = people
        for channel in self.channels:
            if not pending:
                break
            results = await self._try(channel, pending, notice)
            reached: set[str] = set()
            for person in pending:
                status, why, t0, t1 = results[person.username]
                if status != "skipped":
                    attempts[person.username] = attempts.get(person.username, 0) + 1
                deliveries.append(self._row(notice, person.username, channel.name,
                                            attempts.get(person.username, 0) or 1, status, why, t0, t1))
                if status == "sent":
                    reached.add(person.username)
            pending = [p for p in pending if p.username not in reached]
        if not self.channels:
            for person in pending:
                deliveries.append(self._row(notice, person.username, "-", 0, "failed",
                                            "no channel is configured (docs/notify.md)", now, now))
        await asyncio.to_thread(self._store, deliveries)
        missed = sorted({p.username for p in pending} | {n for n, _ in unknown})
        if missed and self.publish is not None:
            self.publish([NotifyFailed(alarm=notice.alarm, notice=notice.id, recipients=missed).out()])
        return deliveries

    async def _try(self, channel: Channel, people: list[Recipient],
                   notice: Notice) -> dict[str, tuple[str, str | None, datetime, datetime]]:
        started = now_utc()
        t0 = time.monotonic()
        limit = channel.timeout_s or self.timeout_s
        try:
            answers = await asyncio.wait_for(channel.send(self._http(), people, notice), limit)
        except TimeoutError:
            answers = {p.username: f"timed out after {limit:g} s" for p in people}
        except Exception as exc:  # noqa: BLE001 - any channel failure is recorded, the next channel follows
            answers = {p.username: describe(exc) for p in people}
        finished = now_utc()
        log.debug("notify %s: %d recipients in %.0f ms", channel.name, len(people), (time.monotonic() - t0) * 1000)
        out: dict[str, tuple[str, str | None, datetime, datetime]] = {}
        for p in people:
            why = answers.get(p.username, "the channel gave no answer for this recipient")
            if why is None:
                out[p.username] = ("sent", None, started, finished)
            elif why.startswith(SKIP):
                out[p.username] = ("skipped", why[len(SKIP):].strip(), started, finished)
            else:
                out[p.username] = ("failed", why, started, finished)
        return out

    @staticmethod
    def _row(notice: Notice, recipient: str, channel: str, attempt: int, status: str, why: str | None,
             t0: datetime, t1: datetime) -> Delivery:
        return Delivery(notice=notice.id, alarm=notice.alarm, recipient=recipient, channel=channel, attempt=attempt,
                        status=status, why=why, started_at=t0, finished_at=t1,  # type: ignore[arg-type]
                        duration_ms=max(0, round((t1 - t0).total_seconds() * 1000)))

    def _resolve(self, entries: Iterable[str]) -> tuple[list[Recipient], list[tuple[str, str]]]:
        names: list[str] = []
        unknown: list[tuple[str, str]] = []
        for entry in entries:
            kind, sep, ident = entry.partition(":")
            if sep and kind in ("grid", "team"):
                members = self.groups(kind, ident) if self.groups is not None else []
                if not members:
                    unknown.append((entry[:64], f"nobody is listed for {entry} (the duty roster has no one)"))
                names.extend(members)
            else:
                names.append(entry)
        names = list(dict.fromkeys(names))
        with self.engine.connect() as conn:
            known = {r.username for r in conn.execute(select(users.c.username, users.c.disabled)
                                                      .where(users.c.username.in_(names))) if not r.disabled}
            phones = dict(conn.execute(select(notify_contacts.c.username, notify_contacts.c.phone)
                                       .where(notify_contacts.c.username.in_(names))).all())
        people = [Recipient(n, phones.get(n)) for n in names if n in known]
        unknown += [(n[:64], "no such user, or disabled") for n in names if n not in known]
        return people, unknown

    def _store(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            with self.engine.begin() as conn:
                conn.execute(notify_deliveries.insert(), [d.model_dump() for d in deliveries])

    # --- reading the record ------------------------------------------------------------------------------
    def deliveries(self, alarm: str) -> list[Delivery]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(notify_deliveries).where(notify_deliveries.c.alarm == alarm)
                                .order_by(notify_deliveries.c.seq)).all()
        return [Delivery.model_validate(dict(r._mapping)) for r in rows]

    def set_phone(self, username: str, phone: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(notify_contacts).where(notify_contacts.c.username == username))
            conn.execute(notify_contacts.insert().values(username=username, phone=phone, updated=now_utc()))
