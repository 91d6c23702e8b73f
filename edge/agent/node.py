"""Wires a node together and runs it: one asyncio loop owns all of the node's state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge.agent.sdnotify import notify, watchdog_interval_s
from edge.clock import Clock, SystemClock
from edge.config import NodeConfig
from edge.errors import HardwareError, PinganError
from edge.hw.door_pins import DoorPins
from edge.hw.gpio import AlarmPostPins
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.link.mqtt import NodeLink, pem_bytes
from edge.link.outbox import Outbox, clip_ref_key, event_key, snapshot_key
from edge.link.sender import Sender
from edge.protocol import Heartbeat, HubStatus, Receipt, Reply, Topics, utcnow
from edge.roles.door.access_list import AccessList
from edge.shared.aio import wait_event
from edge.shared.securefs import private_dir
from edge.sim.control import ControlServer
from edge.sim.reader import ReaderSimulator

if TYPE_CHECKING:  # imported when needed: the camera (OpenCV, numpy) costs a door without one ~40 MB
    from edge.roles.alarm_post import AlarmPost
    from edge.roles.door.lock import Door  # the reader's driver needs pyserial: only pingan[door] has it

log = logging.getLogger(__name__)
TICK_S = 0.05


class NodeAgent:
    def __init__(self, cfg: NodeConfig, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.started = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        private_dir(cfg.data_dir)  # 0700: outbox, access list and nonces are 0600 inside (edge/shared/securefs.py)
        self.outbox = Outbox(cfg.data_dir / "outbox.db", cfg.outbox.max_bytes, cfg.outbox.reserve_bytes)
        self.guard = CommandGuard(cfg.node.id, cfg.signing_key(), cfg.data_dir / "nonces.db", self.clock)
        if self.guard.key is None:
            log.warning("no command-signing key in $%s or $CREDENTIALS_DIRECTORY: the node will refuse "
                        "every command from the hub (alarm.ack included)", cfg.key_env)
        self.commands = CommandDispatcher(self.guard, audit=lambda kind, data: self.role.emit(kind, data),
                                          send_reply=self._send_reply)
        self.sim_reader: ReaderSimulator | None = None
        self.access: AccessList | None = None
        self.door: Door | None = None  # the role, when this node is a rental door
        self.camera = None
        self.worker: Any | None = None
        self.live: Any | None = None  # live view / talk-back sessions (edge/live), alarm poles with a camera
        self.selftest: Any | None = None  # edge.selftest.runner.SelfTester, poles and doors
        self.probe: Any | None = None  # edge.selftest.probe.UplinkProbe, answered in _on_receipt
        if cfg.node.kind == "rental_door":
            self.pins: AlarmPostPins | DoorPins = DoorPins(cfg.door, cfg.pins.factory)  # relay de-energised first
        else:
            self.pins = AlarmPostPins(cfg.pins)
        if cfg.wants_camera:
            from edge.hw.camera import open_camera

            try:
                # privacy first: masked pixels never reach any consumer (snapshots, burst, detection)
                masks = [m.points for m in cfg.vision.masks] if cfg.vision is not None else None
                self.camera = open_camera(cfg.camera.source, cfg.camera.width, cfg.camera.height, cfg.node.id,
                                          masks=masks)
            except HardwareError as exc:
                log.error("camera unavailable, alarms will go without a picture: %s", exc)
        mq = cfg.mqtt
        self.link = NodeLink(self.loop, cfg.node.id, cfg.node.kind, host=mq.host, port=mq.port,
                             username=mq.username or cfg.node.id, password=cfg.secret(mq.password_env),
                             tls=mq.tls, tls_ca=str(mq.ca_file) if mq.ca_file else None,
                             keepalive=mq.keepalive_s, protocol=mq.protocol,
                             client_cert=str(mq.client_cert) if mq.client_cert else None,
                             client_key=pem_bytes(cfg.secret(mq.client_key_env)) if mq.client_cert else None)
        self.sender = Sender(self.outbox, self.link.publish, self.clock, window=cfg.outbox.window,
                             resend_after=cfg.outbox.resend_after_s)
        if isinstance(self.pins, DoorPins):
            self.door = self._make_door(self.pins)
            self.role: AlarmPost | Door = self.door
            self.selftest = self._make_door_selftest(self.pins, self.door)
        else:
            from edge.roles.alarm_post import AlarmPost

            self.worker = self._make_camera_worker() if self.camera is not None else None
            self.role = AlarmPost(cfg, self.pins, self.worker or self.camera, self.outbox, self.clock, self.commands,
                                  wake=self.wake, send_direct=self.link.publish)
            if self.worker is not None:
                self.role.ring = self.worker.ring
                role = self.role
                self.worker.on_events = lambda events: self.loop.call_soon_threadsafe(role.on_vision_events, events)
            if self.worker is not None and cfg.live.enabled:
                from edge.live.wiring import make_live

                self.live = self.role.live = make_live(self)
                self.live.register(self.commands)
            if self.camera is None:
                self.role.camera_ok = False
                self.role.emit("tamper.camera", {"reason": "feed_lost", "detail": "camera did not open"})
            self.selftest = self._make_selftest(self.pins, self.role)
            self.pins.on_button(lambda pressed: self.loop.call_soon_threadsafe(
                self.role.on_button_edge, pressed, self.clock.monotonic()))
            self.pins.on_tamper(lambda opened: self.loop.call_soon_threadsafe(
                self.role.on_enclosure_edge, opened, self.clock.monotonic()))
        self.link.on_message = self._on_message
        self.link.on_connected = self._on_connected
        self.control: ControlServer | None = None
        self._last_tick = self._last_progress = time.monotonic()
        self.updater: Any | None = None  # edge.agent.updates.ConfigUpdater, set by `pingan-edge run`
        self.restart_reason: str | None = None
        self.hub_status_seen = False  # the retained hub status arrived: our subscriptions work

    def _make_probe(self, role: Any) -> Any:
        """The self-test's uplink probe: a selftest.probe through the role's outbox, timed to its receipt."""
        from edge.selftest.probe import UplinkProbe

        self.probe = UplinkProbe(lambda kind, data: role.emit(kind, data),
                                 withdraw=lambda event_id: self.sender.receipted([event_key(event_id)]),
                                 now=self.clock.now)
        return self.probe

    def _make_selftest(self, pins: AlarmPostPins, role: Any) -> Any:
        """The pole's self-test (docs/selftest.md): on selftest.run and nightly in this node's slot."""
        from edge.hw.audio import AlsaToneLoop, FakeAcousticLoop, ToneLoop
        from edge.selftest.pole import pole_checks

        tone: ToneLoop | None
        if pins.mock:
            tone = FakeAcousticLoop()
        else:
            try:
                tone = AlsaToneLoop()
            except HardwareError as exc:
                log.warning("self-test without the tone check: %s", exc)
                tone = None
        camera = self.worker or self.camera  # the worker's read() is its newest frame, None when stale
        pipeline = getattr(self.worker, "pipeline", None)
        tamper = getattr(pipeline, "tamper", None)
        checks = pole_checks(
            self.cfg, pins, role, tone=tone, read_frame=camera.read if camera is not None else None,
            reference_sharpness=lambda: tamper.reference_sharpness if tamper is not None else None,
            outbox_depth=self.outbox.depth, probe=self._make_probe(role), connected=self._uplink_up,
            command_skew=lambda: tester.command_skew(), data_dir=self.cfg.data_dir)
        tester = self._tester(checks, role)
        return tester

    def _make_door_selftest(self, pins: DoorPins, door: Door) -> Any:
        """The door's self-test (docs/selftest.md, "Doors"): reader, lock (read only), exit, fire, shared."""
        from edge.selftest.door import door_checks

        checks = door_checks(self.cfg, pins, door, outbox_depth=self.outbox.depth, probe=self._make_probe(door),
                             connected=self._uplink_up, command_skew=lambda: tester.command_skew(),
                             data_dir=self.cfg.data_dir)
        tester = self._tester(checks, door)
        return tester

    def _tester(self, checks: list[Any], role: Any) -> Any:
        from edge.selftest.runner import SelfTester

        st = self.cfg.selftest
        tester = SelfTester(self.cfg.node.id, checks, role.emit, start=st.start, window_min=st.window_min,
                            retry_after_s=st.retry_after_min * 60)
        tester.register(self.commands)
        return tester

    def _uplink_up(self) -> bool:
        return bool(self.link.connected and self.sender.hub_online)

    def _make_camera_worker(self) -> Any:
        """The camera thread: newest frame for snapshots, pre-press burst, detection if configured."""
        from edge.vision.ring import FrameRing
        from edge.vision.worker import CameraWorker

        cfg = self.cfg
        pipeline = None
        if cfg.vision is not None:
            from edge.vision.pipeline import VisionPipeline

            try:
                pipeline = VisionPipeline(cfg.vision, self.clock)
            except PinganError as exc:  # a missing model must not stop the alarm path
                log.error("on-device detection is off: %s", exc)
        ring = FrameRing(seconds=cfg.camera.burst_s, fps=min(2.0, cfg.camera.fps), clock=self.clock) \
            if cfg.camera.burst_s > 0 else None
        return CameraWorker(self.camera, self.clock, fps=cfg.camera.fps, pipeline=pipeline, ring=ring).start()

    def _make_door(self, pins: DoorPins) -> Door:
        # imported here: the reader's driver needs pyserial, which only pingan[door] installs
        from edge.hw.fingerprint import FingerprintReader
        from edge.roles.door.lock import Door

        cfg = self.cfg
        rc = cfg.reader
        assert rc is not None
        if rc.port == "sim":
            if not pins.mock:
                raise HardwareError("reader.port 'sim' needs simulated pins (pins.factory: mock)")
            self.sim_reader = ReaderSimulator(enrolled=rc.sim_enrolled, address=rc.address,
                                              password=rc.password).start()
        port = self.sim_reader.port if self.sim_reader else rc.port

        def open_reader() -> FingerprintReader:
            reader = FingerprintReader.open(port, baudrate=rc.baudrate, timeout=rc.timeout, address=rc.address,
                                            password=rc.password)
            try:
                reader.verify_password()
            except HardwareError:
                reader.close()
                raise
            return reader

        reader: FingerprintReader | None
        try:
            reader = open_reader()
        except HardwareError as exc:
            log.error("fingerprint reader unavailable (the door stays locked to fingers; retrying): %s", exc)
            reader = None
        self.access = AccessList(cfg.data_dir / "access.db")
        block_key = cfg.block_key()
        if block_key is None:
            log.warning("no block key in $%s: enrolments here cannot be synced to the block's other doors",
                        cfg.door.block_key_env if cfg.door else "PINGAN_BLOCK_KEY")
        door = Door(cfg, pins, reader, self.outbox, self.clock, self.commands, self.access, camera=self.camera,
                    block_key=block_key, open_reader=open_reader, wake=self.wake, send_direct=self.link.publish)
        now = self.clock.monotonic
        pins.on_contact(lambda opened: self.loop.call_soon_threadsafe(door.on_contact_edge, opened, now()))
        pins.on_exit(lambda pressed: self.loop.call_soon_threadsafe(door.on_exit_edge, pressed, now()))
        pins.on_fire(lambda active: self.loop.call_soon_threadsafe(door.on_fire_edge, active, now()))
        return door

    def wake(self) -> None:
        self._wake.set()

    def _send_reply(self, reply: Reply) -> None:
        self.link.publish(Topics.replies(self.cfg.node.id), reply.to_bytes(), 1)

    def _on_connected(self) -> None:
        self.sender.reset()
        self.wake()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == Topics.HUB_STATUS:
            try:
                self.sender.hub_online = HubStatus.model_validate_json(payload).state == "online"
                self.hub_status_seen = True
            except ValidationError:
                log.warning("ignoring malformed hub status")
            if self.sender.hub_online:
                self.wake()
            return
        parsed = Topics.parse(topic)
        if parsed is None or parsed.node != self.cfg.node.id:
            return
        if parsed.channel == "receipts":
            self._on_receipt(payload)
        elif parsed.channel == "commands":
            reply = self.commands.dispatch(payload)  # a slow command's task sends its own reply
            if reply is not None:
                self._send_reply(reply)

    def _on_receipt(self, payload: bytes) -> None:
        try:
            receipt = Receipt.model_validate_json(payload)
        except ValidationError:
            log.warning("ignoring malformed receipt")
            return
        self.sender.receipted([event_key(i) for i in receipt.ids] + [snapshot_key(i) for i in receipt.snapshots]
                              + [clip_ref_key(c) for c in receipt.clips])
        self._last_progress = time.monotonic()
        if self.probe is not None:
            self.probe.on_receipt(receipt.ids, receipt.hub_time, {r.id: r.reason for r in receipt.rejected})
        for item in receipt.rejected:
            entry = self.sender.rejected(event_key(item.id), item.reason) or \
                self.sender.rejected(snapshot_key(item.id), item.reason)
            if entry is not None:
                log.error("hub refused %s: %s (moved to dead letters)", item.id, item.reason)
                self.role.emit("node.fault", {"fault": "event_rejected", "event_id": item.id,
                                              "reason": item.reason[:200]})
        self.role.on_receipt(receipt.ids)
        if self.updater is not None:
            self.updater.on_receipt(receipt.ids + [item.id for item in receipt.rejected])
        self.wake()

    # --- tasks -------------------------------------------------------------------------------
    async def _pump(self) -> None:
        while True:
            await wait_event(self._wake, 0.5)
            self._wake.clear()
            if self.link.connected:
                self.sender.pump()

    async def _ticks(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            self.role.tick(self.clock.monotonic())
            await asyncio.sleep(TICK_S)

    async def _watchdog(self) -> None:
        """Ping systemd only while the tick loop runs and the outbox is not stuck."""
        interval = watchdog_interval_s()
        notify("READY=1")
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            ticked = time.monotonic() - self._last_tick < 5
            stuck = self.link.connected and self.sender.outstanding and \
                time.monotonic() - self._last_progress > 300
            if ticked and not stuck:
                notify("WATCHDOG=1")
            else:
                log.error("not pinging the watchdog: tick loop %s, outbox %s",
                          "ok" if ticked else "stalled", "stuck" if stuck else "ok")

    async def _heartbeats(self) -> None:
        while True:
            if self.link.connected:
                st = os.statvfs(self.cfg.data_dir)
                hb = Heartbeat(ts=utcnow(), uptime_s=round(time.monotonic() - self.started, 1),
                               outbox_depth=self.outbox.depth(), outbox_bytes=self.outbox.bytes,
                               evicted=self.outbox.counter("evicted"),
                               dropped=self.outbox.counter("dropped"), cpu_temp_c=_cpu_temp(),
                               disk_free_bytes=st.f_bavail * st.f_frsize)
                self.link.publish(Topics.heartbeat(self.cfg.node.id), hb.to_bytes(), 0)
            await asyncio.sleep(self.cfg.heartbeat_s)

    async def run(self, handle_signals: bool = True) -> None:
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self.loop.add_signal_handler(sig, self._stopping.set)
        if self.pins.mock:
            self.control = ControlServer(self.cfg.control_socket, self)
            await self.control.start()
        self.link.start()
        log.info("node %s (%s) started; broker %s", self.cfg.node.id, self.cfg.node.kind, self.cfg.mqtt.url)
        coros = [self._pump(), self._ticks(), self._heartbeats(), self._watchdog()]
        if self.door is not None:
            coros.append(self.door.run_reader())
        if self.updater is not None:
            coros.append(self.updater.run())
        if self.selftest is not None and self.cfg.selftest.enabled:
            coros.append(self.selftest.nightly())
        tasks = [asyncio.create_task(c) for c in coros]
        try:
            await self._stopping.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.shutdown()

    def stop(self) -> None:
        self._stopping.set()

    def restart(self, reason: str) -> None:
        """Stop cleanly (relay released, outbox closed) so `pingan-edge run` starts again (config.update)."""
        self.restart_reason = reason
        self._stopping.set()

    async def shutdown(self) -> None:
        notify("STOPPING=1")
        if self.control:
            await self.control.stop()
        if self.live is not None:
            await self.live.close()  # camera and microphone released before the link goes
        self.link.stop(say_offline=self.restart_reason is None)  # a planned restart is back in seconds
        self.commands.close()  # slow commands (enrolment) still running are cancelled
        if self.door is not None:
            self.door.close()  # relay de-energised, reader closed
        self.pins.close()
        if self.sim_reader is not None:
            self.sim_reader.stop()
        if self.access is not None:
            self.access.close()
        if self.worker is not None:
            self.worker.close()  # stops the camera thread, then closes the camera
        elif self.camera:
            self.camera.close()
        self.outbox.close()
        self.guard.close()
        log.info("node %s stopped", self.cfg.node.id)


def _cpu_temp() -> float | None:
    p = Path("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(p.read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


async def run_node(cfg: NodeConfig) -> None:
    agent = NodeAgent(cfg)
    await agent.run()
