"""The hub's FastAPI application: lifespan wiring of store, ingest, live stream and resender."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from edge.shared.securefs import private_dir
from hub import __version__
from hub.alarms.escalation import Escalator
from hub.alarms.homeassistant import HomeAssistantBridge
from hub.alarms.service import HubService
from hub.api.auth import router as auth_router
from hub.api.doors import router as doors_router
from hub.api.fleet import router as fleet_router
from hub.api.history import router as history_router
from hub.api.liveview import router as liveview_router
from hub.api.map import router as map_router
from hub.api.node_config import router as nodeconfig_router
from hub.api.notify import router as notify_router
from hub.api.patrols import router as patrols_router
from hub.api.reports import router as reports_router
from hub.api.responders import setup_responders
from hub.api.routes import router
from hub.api.selftest import router as selftest_router
from hub.api.sensitive import router as sensitive_router
from hub.api.staff import router as staff_router
from hub.auth.policy import AuthMiddleware
from hub.auth.service import Auth
from hub.config import HubSettings
from hub.doors.service import DoorService
from hub.errors import Conflict, NotFound
from hub.gb28181.adapter import GbAdapter
from hub.gb28181.invite import MediaSessions
from hub.ingest.writer import Ingest
from hub.live.fanout import LiveHub, watch_loop_lag
from hub.live.messages import TaskMessage, TaskRelay
from hub.live.video.mjpeg import MjpegRelays
from hub.live.video.service import KEEPALIVE_EVERY_S, LiveService
from hub.map.grids import tile_origins
from hub.nodes.broker_headroom import HeadroomCheck
from hub.nodes.fleet import is_loopback
from hub.nodes.health import NodeHealthHistory
from hub.nodes.keys import KeyVault
from hub.notify.service import Notifier
from hub.reports.service import Reports
from hub.responders.channels import ChannelNotifier, RosterGroups
from hub.responders.live import TaskStreams
from hub.responders.service import Notifier as DispatchNotifier
from hub.responders.service import Responders
from hub.runtime import memtrim, metrics
from hub.runtime.cluster import Cluster
from hub.runtime.periodic import Job, start_jobs, stop_jobs
from hub.sensitive.periods import Periods
from hub.sensitive.report import DailyReports
from hub.sensitive.scheduler import Scheduler as SensitiveScheduler
from hub.store.engine import init_db, make_engine
from hub.transport.mqtt import MqttTransport, Transport
from hub.web.console import router as console_router

log = logging.getLogger(__name__)


class HubState:
    """Everything a request may need, built once per process."""

    def __init__(self, settings: HubSettings, transport: Transport | None = None,
                 notifier: DispatchNotifier | None = None) -> None:
        self.settings = settings
        private_dir(settings.data_dir)  # 0700: database, keys and state (edge/shared/securefs.py)
        self.engine = make_engine(settings.db_url)
        init_db(self.engine)
        self.live = LiveHub()
        self.cluster = Cluster(self.engine, self.live, settings.replica)  # replicas: fan-out and leader
        self.vault = KeyVault(settings)
        self.ingest: Ingest | None = None
        self.transport: Transport | None = None
        if settings.mqtt_enabled:
            self.transport = transport or MqttTransport(settings)
            self.ingest = Ingest(settings, self.engine, self._notify, self.transport)
            self.ingest.is_leader = self.cluster.is_leader
            self.ingest.process_status = self.cluster.is_leader  # statuses once, by the leader (cluster.py)
            resubscribe = getattr(self.transport, "resubscribe_statuses", None)
            if resubscribe is not None:
                self.cluster.on_lead = resubscribe
        self.service = HubService(self.engine, self.vault, self._publish)
        self.doors = DoorService(self.engine, self.service)
        self.liveview = LiveService(self.engine, self.service, ice_servers=settings.live_ice_servers,
                                    viewer_timeout_s=settings.live_viewer_timeout_s,
                                    answer_timeout_s=settings.live_answer_timeout_s,
                                    connected=lambda: self.ingest is not None and self.ingest.connected)
        self.mjpeg = MjpegRelays(self.liveview)
        self.auth = Auth(self.engine, session_ttl_s=settings.session_ttl_s, max_failures=settings.login_max_failures,
                         window_s=settings.login_window_s, max_ip_failures=settings.login_max_failures_per_ip,
                         hash_concurrency=settings.login_hash_concurrency, hash_queue=settings.login_hash_queue,
                         metrics_token=settings.metrics_token)
        # sensitive periods (issue 20, hub/sensitive): shorter escalation in their grids, profile pushes, reports
        self.periods = Periods(self.engine, settings.timezone, settings.escalate_after_s)
        self.escalator = Escalator(self.engine, after_s=settings.escalate_after_s, webhook=settings.escalation_webhook,
                                   publish=self.live.publish_threadsafe, overrides=self.periods.escalation_overrides)
        self.notifier = Notifier.from_settings(settings, self.engine, self.live.publish_threadsafe)  # hub/notify
        self.sensitive = SensitiveScheduler(
            self.periods, self.service, DailyReports(self.engine, self.periods.tz, settings.data_dir,
                                                     settings.escalation_webhook, self.notifier),
            publish=self.live.publish_threadsafe,
            connected=lambda: self.ingest is not None and self.ingest.connected)
        # responders and dispatch (issue 18): their phones' own streams; a dispatch also goes out through
        # hub/notify's channels for a phone whose page is closed (none configured: recorded as such)
        self.task_streams = TaskStreams()
        self.responders = Responders(
            self.engine, self.service, timezone=settings.timezone, accept_within_s=settings.accept_within_s,
            keep_days=settings.position_keep_days, warn_m=settings.on_scene_warn_m,
            photo_max_bytes=settings.photo_max_bytes, auto_kinds=settings.auto_dispatch_kinds,
            publish_ops=self.live.publish_threadsafe, publish_task=self._publish_task,
            notifier=notifier or (ChannelNotifier(self.notifier, settings.public_url) if self.notifier.channels
                                  else None))
        self.notifier.groups = RosterGroups(self.responders)  # grid:/team: recipients from the duty roster
        # is the broker on this box allowed a connection per node? (/api/health, the console's header)
        self.broker_headroom = HeadroomCheck(self.engine, settings.broker_dir, is_loopback(settings.mqtt_host))
        self.node_health = NodeHealthHistory(self.engine, timedelta(days=settings.health_keep_days))  # hourly trend
        self.cluster.on_items = self._live_replies
        metrics.register_store(self.engine)
        # city networking (GB/T 28181, hub/gb28181): an adapter beside the console; off without PINGAN_GB_UPSTREAM.
        # Live video for the city needs a media side (hub/gb28181/media): None answers INVITE 503
        self.gb_media: MediaSessions | None = None
        if settings.gb_upstream:  # one pole source per camera, shared by the city's viewers (hub/gb28181/media)
            from hub.gb28181.media import GbMediaSessions

            async def media_ended(call_id: str, reason: str) -> None:
                if self.gb is not None:
                    await self.gb.media_ended(call_id, reason)

            self.gb_media = GbMediaSessions(
                self.liveview, self.engine, limit_per_node=settings.gb_streams_per_pole,
                advertise_host=None if settings.gb_sip_host in ("0.0.0.0", "::") else settings.gb_sip_host,
                on_end=media_ended)
        self.gb: GbAdapter | None = self.make_gb()
        self.homeassistant: HomeAssistantBridge | None = None
        if settings.ha_discovery and self.transport is not None:
            self.homeassistant = HomeAssistantBridge(self.engine, self.transport.publish)

    def make_gb(self) -> GbAdapter | None:
        """The city-networking adapter (hub/gb28181), or None when PINGAN_GB_UPSTREAM is unset."""
        if not self.settings.gb_upstream:
            return None
        return GbAdapter(self.settings, self.engine, self.live, self.gb_media)

    def _notify(self, items: list[dict[str, Any]]) -> None:
        """After each ingest commit (writer thread): live fan-out, and door replies to act on."""
        self.live.publish_threadsafe(items)
        self.responders.on_new_alarms(items)  # auto-dispatch kinds (off by default), off this thread
        if self.live.relay is None:  # replicas: every replica gets them through the cluster's relay instead
            self._live_replies(items)
        for item in items:
            if item.get("type") == "reply" and str(item.get("name", "")).startswith("access."):
                try:
                    self.doors.on_reply(item["command_id"])
                except Exception:  # noqa: BLE001 - one bad reply never stops ingest
                    log.exception("handling the reply to %s failed", item["command_id"])

    def _publish_task(self, username: str, message: dict[str, Any]) -> None:
        """A task message to a responder's open pages: here, or on replicas through every replica (the page may
        be connected to any of them)."""
        if self.live.relay is None:
            self.task_streams.publish_threadsafe(username, message)
        else:
            self.live.relay([TaskRelay(to=username, task=message["task"]).out()])

    def _live_replies(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == "task_for":  # relayed by a replica (see _publish_task)
                self.task_streams.publish_threadsafe(item["to"], TaskMessage(task=item["task"]).out())
                continue
            if item.get("type") == "reply" and str(item.get("name", "")).startswith("live."):
                try:
                    self.liveview.on_reply(item)  # an SDP answer or a keepalive's result
                except Exception:  # noqa: BLE001 - one bad reply never stops ingest
                    log.exception("handling the reply to %s failed", item["command_id"])

    def _publish(self, topic: str, payload: bytes, qos: int) -> bool:
        if self.transport is None:
            log.info("MQTT disabled: not sending %s", topic)
            return False
        return self.transport.publish(topic, payload, qos)


def create_app(settings: HubSettings, transport: Transport | None = None,
               notifier: DispatchNotifier | None = None) -> FastAPI:
    """The hub; ``transport`` stands in for the broker connection (tests feed batches by hand); ``notifier``
    sends dispatches to the responders' channels (hub/responders/service.py ``Notifier``)."""
    state = HubState(settings, transport, notifier)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.live.bind(asyncio.get_running_loop())
        state.notifier.bind(asyncio.get_running_loop())
        state.task_streams.bind(asyncio.get_running_loop())
        await asyncio.to_thread(state.cluster.start)
        if state.ingest:
            state.ingest.start()
        jobs = start_jobs(periodic_jobs(state), state.cluster.is_leader)
        lag_watch = asyncio.create_task(watch_loop_lag())
        await start_gb(state)
        gb_follow = asyncio.create_task(follow_leader(state)) if settings.gb_upstream else None
        try:
            yield
        finally:
            lag_watch.cancel()
            if gb_follow is not None:
                gb_follow.cancel()
            await stop_gb(state)
            await stop_jobs(jobs)
            await state.mjpeg.close()
            state.responders.close()
            await state.notifier.aclose()
            if state.ingest:
                await asyncio.to_thread(state.ingest.stop)
            await asyncio.to_thread(state.cluster.stop)
            state.engine.dispose()

    app = FastAPI(title="Pingan hub", version=__version__, lifespan=lifespan,
                  description="District monitoring centre: alarms, nodes, events, live stream.")
    app.state.hub = state
    app.include_router(router)
    app.include_router(doors_router)
    app.include_router(nodeconfig_router)  # config.update (hub/nodes/config_push.py)
    app.include_router(liveview_router)
    app.add_middleware(AuthMiddleware, auth=state.auth)  # login + access policy for every route (hub/auth/policy.py)
    app.include_router(auth_router)
    app.include_router(reports_router)
    setup_responders(app)  # responders, dispatch and the phone app at /r/ (issue 18)
    app.include_router(notify_router)  # hub/notify: channels, deliveries, Web Push subscriptions
    app.include_router(patrols_router)  # hub/patrols: QR check-ins, coverage and night gaps
    app.include_router(selftest_router)  # self-test history, requests, fleet view (hub/selftest)
    app.include_router(sensitive_router)  # sensitive periods (hub/sensitive)
    app.include_router(map_router)  # the console's map: tile source, grid boundaries (hub/map)
    app.include_router(history_router)  # closed alarms and events, searched (hub/history)
    app.include_router(staff_router)  # staff accounts and the audit log (admins)
    app.include_router(fleet_router)  # add and remove nodes from the console, the node's bundle
    app.include_router(console_router)  # the console page and its static files (hub/web)
    if settings.trusted_proxies:  # X-Forwarded-For only from the proxies named; nobody's by default
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    # outermost: 401s and 404s get the headers too; the map's tile server (PINGAN_MAP_TILES) may serve images
    app.add_middleware(SecurityHeaders, img_src=tile_origins(settings))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    return app


async def start_gb(state: HubState) -> None:
    """City networking starts after ingest; its failure (a SIP port in use, say) is logged, never the hub's.
    Replicas: only the leader registers (one hub ID, one registration); the others wait (follow_leader)."""
    if state.gb is None:
        return
    if not state.cluster.is_leader():
        log.info("GB28181: this replica is not the leader; city networking runs on the leader")
        state.gb = None
        return
    try:
        await state.gb.start()
    except Exception:  # noqa: BLE001 - the alarm path does not depend on the city platform
        log.exception("GB28181: city networking did not start (the hub runs on without it)")
        state.gb = None


async def follow_leader(state: HubState, every_s: float = 2.0) -> None:
    """Replicas: city networking moves with the leadership (a new leader registers, a former one unregisters)."""
    was = state.cluster.is_leader()
    while True:
        await asyncio.sleep(every_s)
        lead = state.cluster.is_leader()
        if lead and not was:
            state.gb = state.make_gb()
            await start_gb(state)
        elif was and not lead:
            await stop_gb(state)
            state.gb = None
        was = lead


async def stop_gb(state: HubState) -> None:
    """Unregister from the city platform (Expires: 0), bounded so a dead platform never holds up shutdown."""
    if state.gb is None:
        return
    try:
        await asyncio.wait_for(state.gb.stop(), 6)
    except Exception:  # noqa: BLE001 - shutdown goes on
        log.exception("GB28181: stopping city networking failed")
    close = getattr(state.gb_media, "close", None)  # the pole sources' live sessions, before the MJPEG relays
    if close is not None:
        try:
            await asyncio.wait_for(close(), 6)
        except Exception:  # noqa: BLE001 - shutdown goes on
            log.exception("GB28181: closing the city's video streams failed")


class SecurityHeaders:
    """CSP, nosniff, no framing and no referrer to other sites on every HTTP answer (pure ASGI).

    The console (hub/web) has no inline script, style or event-handler attribute: scripts, styles and
    snapshots come from the hub itself, the live view's video arrives as a WebRTC ``srcObject`` (no
    media URL) and its signalling and ``/api/live`` over fetch and the WebSocket of the same host.
    ``Referrer-Policy: same-origin``, not ``no-referrer``: under ``no-referrer`` browsers send
    ``Origin: null`` on same-origin POSTs, and the cookie's Origin check (hub/auth/policy.py) refuses those.
    FastAPI's ``/docs`` and ``/redoc`` pull Swagger/ReDoc from a CDN with an inline script: they get
    only the framing and plugin limits."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'{img}; media-src 'self'; "
           "font-src 'self'; connect-src 'self'{ws}; object-src 'none'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'")
    DOCS_CSP = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
    HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
    FIXED = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
             (b"referrer-policy", b"same-origin"))

    def __init__(self, app: Any, img_src: list[str] | tuple[str, ...] = ()) -> None:
        self.app = app
        self.img = "".join(f" {o}" for o in img_src)

    def _csp(self, scope: dict[str, Any]) -> bytes:
        if scope["path"] in self.DOCS_PATHS:
            return self.DOCS_CSP.encode()
        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
        # 'self' covers ws(s) of the page's own host in CSP3 browsers; named as well for older ones
        ws = f" ws://{host} wss://{host}" if self.HOST.fullmatch(host) else ""
        return self.CSP.format(ws=ws, img=self.img).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self._csp(scope)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in ((b"content-security-policy", csp), *self.FIXED) if k not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def periodic_jobs(state: HubState) -> list[Job]:
    """Every periodic job of the hub (hub/runtime/periodic.py runs them); leader_only on replicas."""
    settings = state.settings

    def resend() -> None:
        state.service.resend_unanswered(settings.ack_resend_s)  # alarm.ack until the node replies
        if state.homeassistant is not None and state.transport is not None and state.transport.connected:
            state.homeassistant.sync()

    jobs = [
        Job("resend", settings.ack_resend_s / 2, resend, leader_only=True),
        Job("escalation", min(1.0, settings.escalate_after_s / 4), state.escalator.check, leader_only=True),
        # closed days' door counts into the report roll-up, so reports over weeks stay fast
        Job("report_roll_up", 600, Reports(state.engine, settings.timezone).roll_up, leader_only=True,
            first_after_s=0),
        Job("live_sweep", KEEPALIVE_EVERY_S, state.liveview.sweep),  # each replica its own sessions
        # dispatches not accepted in time go to the next nearest; positions past position_keep_days go
        Job("dispatch_expiry", min(5.0, settings.accept_within_s / 4), state.responders.expire, leader_only=True),
        Job("sensitive", settings.sensitive_tick_s, state.sensitive.tick, leader_only=True, first_after_s=0.5),
        Job("position_purge", 3600, state.responders.purge_positions, leader_only=True, first_after_s=60),
        Job("health_purge", 3600, lambda: state.node_health.purge(datetime.now(UTC)), leader_only=True,
            first_after_s=90),
    ]
    if memtrim.available():  # RSS follows what the hub holds (hub/runtime/memtrim.py)
        jobs.append(Job("memtrim", 60, memtrim.trim))
    return jobs
