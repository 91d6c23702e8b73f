"""Live view and talk-back sessions on a node, signalled over the signed command channel.

``live.start`` carries the browser's SDP offer (``args.sdp``), a session id and ``talk``; the node
answers in the reply's ``data.sdp``. aiortc gathers its ICE candidates before it answers, so one
offer/answer round trip suffices and nothing new listens on the node: media flows over the
ICE/DTLS/SRTP connection the browser and node set up between them.

A session ends by itself: on ``live.stop``; when the hub's ``live.keepalive`` (sent while the
viewer's console keeps its session alive) has not come for ``keepalive_timeout_s``; after
``max_session_s``; and when the peer connection fails or closes. Then its tracks stop: the shared
encoder stops with its last viewer, the microphone closes with its session. One asyncio loop
(the node's) owns all of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

from edge.clock import Clock, SystemClock
from edge.config import LiveSettings
from edge.errors import HardwareError
from edge.live.audio import Speaker, open_microphone, open_speaker, play_file
from edge.live.video import SharedVideoEncoder
from edge.protocol import Command, LiveKeepaliveArgs, LiveStartArgs, LiveStartReplyData, LiveStopArgs, Reply

log = logging.getLogger(__name__)
DISCONNECTED_GRACE_S = 5.0  # ICE "disconnected" may recover; "failed" and "closed" end at once


@dataclass
class LiveSession:
    id: str
    operator: str
    talk: bool
    pc: RTCPeerConnection
    started: float
    last_keepalive: float
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    speaker: Speaker | None = None
    disconnected_since: float | None = None
    ended: str | None = None
    talking: bool = False  # the pole's LED says the centre is talking (set once the audio is up)


class LiveManager:
    """All live sessions of one node; ``obey`` takes the ``live.*`` commands."""

    def __init__(self, settings: LiveSettings, encoder: SharedVideoEncoder, *, clock: Clock | None = None,
                 on_talk: Callable[[bool], None] = lambda talking: None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.clock = clock or SystemClock()
        self.on_talk = on_talk
        self.sessions: dict[str, LiveSession] = {}
        self.ended: dict[str, str] = {}  # session id → why it ended (told to the hub in keepalive replies)
        self.last_speaker: Speaker | None = None  # the tests measure what the last talk session heard
        self._ticker: asyncio.Task[None] | None = None

    async def obey(self, cmd: Command) -> Reply:
        """Obey one checked live.* command (edge/link/dispatch.py checked it and sends the reply)."""
        try:
            return await self._obey(cmd)
        except Exception as exc:  # noqa: BLE001 - the hub gets an answer, whatever went wrong
            log.exception("live command %s failed", cmd.name)
            return Reply(command_id=cmd.id, ok=False, detail=f"{cmd.name} failed: {exc}"[:300])

    async def _obey(self, cmd: Command) -> Reply:
        if cmd.name == "live.keepalive":
            now = self.clock.monotonic()
            alive, gone = [], {}
            for sid in cmd.args_as(LiveKeepaliveArgs).sessions:
                session = self.sessions.get(sid)
                if session is not None:
                    session.last_keepalive = now
                    alive.append(session.id)
                else:
                    gone[sid] = self.ended.get(sid, "unknown")
            return Reply(command_id=cmd.id, ok=True, detail=f"{len(alive)} alive",
                         data={"alive": alive, "gone": gone})
        if cmd.name == "live.stop":
            sid = cmd.args_as(LiveStopArgs).session
            known = sid in self.sessions
            await self.end(sid, "stopped")
            return Reply(command_id=cmd.id, ok=True, detail="stopped" if known else "no such session")
        return await self._start(cmd)

    async def _start(self, cmd: Command) -> Reply:
        args = cmd.args_as(LiveStartArgs)
        sid = args.session
        if not self.settings.enabled:
            return Reply(command_id=cmd.id, ok=False, detail="live view is disabled in this node's config")
        if sid in self.sessions:
            return Reply(command_id=cmd.id, ok=False, detail=f"session {sid} already exists")
        if len(self.sessions) >= self.settings.max_viewers:
            return Reply(command_id=cmd.id, ok=False,
                         detail=f"this node already serves {len(self.sessions)} sessions (live.max_viewers)")
        sdp = args.sdp
        if "m=" not in sdp:
            return Reply(command_id=cmd.id, ok=False, detail="args.sdp must be the browser's SDP offer")
        talk = args.talk
        pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(args.ice_servers)))
        now = self.clock.monotonic()
        session = LiveSession(sid, cmd.operator or "?", talk, pc, now, now)
        self.sessions[sid] = session
        remote: list[MediaStreamTrack] = []
        pc.on("track", remote.append)  # fired inside setRemoteDescription
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            video = self.encoder.track()
            session.tracks.append(video)
            sender = pc.addTrack(video)
            _prefer_h264(pc, sender)
            if talk:
                await self._add_talk(session, [t for t in remote if t.kind == "audio"])
            else:
                for t in pc.getTransceivers():  # a listen-only offer: nothing of ours goes on audio
                    if t.kind == "audio" and t.sender.track is None:
                        t.direction = "inactive"
            self._watch(session)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)  # gathers ICE candidates: the answer carries them
        except Exception as exc:  # noqa: BLE001 - a bad offer or a missing device: release what was opened
            if not isinstance(exc, ValueError | HardwareError):
                log.exception("live session %s could not start", sid)
            await self.end(sid, "failed")
            return Reply(command_id=cmd.id, ok=False, detail=f"cannot start live view: {exc}"[:300])
        self._ensure_ticker()
        log.info("live session %s started for %s (talk=%s); %d session(s)", sid, session.operator, talk,
                 len(self.sessions))
        return Reply(command_id=cmd.id, ok=True, detail="answer", data=LiveStartReplyData(
            sdp=pc.localDescription.sdp, type=pc.localDescription.type, talk=talk,
            max_session_s=self.settings.max_session_s).dump())

    async def _add_talk(self, session: LiveSession, operator_audio: list[MediaStreamTrack]) -> None:
        mic, closer = open_microphone(self.settings.audio_in)
        session.tracks.append(mic)
        if closer is not None:
            session.closers.append(closer)
        session.pc.addTrack(mic)
        speaker = open_speaker(self.settings.audio_out)
        session.speaker = self.last_speaker = speaker
        prompt_done = asyncio.Event()
        if self.settings.talk_prompt is not None and not self.settings.talk_prompt.is_file():
            log.warning("live.talk_prompt %s does not exist: talking without the recorded prompt",
                        self.settings.talk_prompt)
        if self.settings.talk_prompt is not None and self.settings.talk_prompt.is_file():
            async def prompt() -> None:
                try:
                    await play_file(self.settings.talk_prompt, speaker)  # type: ignore[arg-type]
                finally:
                    prompt_done.set()

            session.tasks.append(asyncio.create_task(prompt()))
        else:
            prompt_done.set()

        for track in operator_audio:
            session.tasks.append(asyncio.create_task(_relay(track, speaker, prompt_done)))

        session.talking = True
        self.on_talk(True)

    def _watch(self, session: LiveSession) -> None:
        @session.pc.on("connectionstatechange")
        async def changed() -> None:
            state = session.pc.connectionState
            log.info("live session %s: connection %s", session.id, state)
            if state in ("failed", "closed"):
                await self.end(session.id, f"connection {state}")
            elif state == "disconnected":
                session.disconnected_since = self.clock.monotonic()
            elif state == "connected":
                session.disconnected_since = None

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        while self.sessions:
            await asyncio.sleep(0.5)
            await self.tick()

    async def tick(self) -> None:
        """End sessions past their time, without keepalive, or whose link is gone."""
        now = self.clock.monotonic()
        s = self.settings
        for session in list(self.sessions.values()):
            if now - session.started >= s.max_session_s:
                await self.end(session.id, "max_session")
            elif now - session.last_keepalive >= s.keepalive_timeout_s:
                await self.end(session.id, "viewer_lost")
            elif session.disconnected_since is not None and now - session.disconnected_since >= DISCONNECTED_GRACE_S:
                await self.end(session.id, "link_lost")

    async def end(self, sid: str, reason: str) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        session.ended = reason
        self.ended[sid] = reason
        while len(self.ended) > 200:
            self.ended.pop(next(iter(self.ended)))
        for track in session.tracks:
            track.stop()  # the encoder stops with its last viewer, the microphone with its session
        for task in session.tasks:
            task.cancel()
        for closer in session.closers:
            with contextlib.suppress(Exception):
                for t in (getattr(closer, "audio", None), getattr(closer, "video", None)):
                    if t is not None:
                        t.stop()
        with contextlib.suppress(Exception):
            await session.pc.close()
        if session.speaker is not None:
            with contextlib.suppress(Exception):
                session.speaker.close()
        if session.talking and not any(s.talking for s in self.sessions.values()):
            self.on_talk(False)
        duration = self.clock.monotonic() - session.started
        log.info("live session %s ended (%s) after %.0f s", sid, reason, duration)

    async def close(self) -> None:
        for sid in list(self.sessions):
            await self.end(sid, "node_stopping")
        if self._ticker is not None:
            self._ticker.cancel()

    def state(self) -> dict[str, Any]:
        return {"sessions": [{"id": s.id, "talk": s.talk, "operator": s.operator} for s in self.sessions.values()],
                "encoder_running": self.encoder.running, "viewers": self.encoder.viewers,
                "frames_encoded": self.encoder.frames_encoded}


async def _relay(track: MediaStreamTrack, speaker: Speaker, prompt_done: asyncio.Event) -> None:
    """The operator's voice to the pole's speaker (dropped while the local prompt plays)."""
    try:
        while True:
            frame = await track.recv()
            if prompt_done.is_set():
                speaker.play(frame)
    except MediaStreamError:
        pass


def _prefer_h264(pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
    """Our packets are H.264 (packetization-mode 1): answer nothing else for the video, or aiortc
    would pick VP8 and try to decode-and-re-encode our packets. aiortc applies codec preferences
    when the remote offer is set, which has already happened here, so the negotiated list is
    filtered the same way (aiortc's own helper) before ``createAnswer``."""
    from aiortc.rtcpeerconnection import filter_preferred_codecs

    wanted = [c for c in RTCRtpSender.getCapabilities("video").codecs
              if c.mimeType == "video/rtx" or (c.mimeType == "video/H264"
                                                and c.parameters.get("packetization-mode") == "1")]
    for t in pc.getTransceivers():
        if t.sender is sender:
            t.setCodecPreferences(wanted)
            t._codecs = filter_preferred_codecs(t._codecs, wanted)
            if not any(c.mimeType == "video/H264" for c in t._codecs):
                raise ValueError("the viewer's offer has no H.264 (packetization-mode 1) video")


def _ice_servers(raw: Any) -> list[RTCIceServer]:
    """ICE servers the hub passes along (a TURN server for a NATed deployment); none on a flat LAN."""
    servers = []
    for item in raw or []:
        if isinstance(item, dict) and item.get("urls"):
            servers.append(RTCIceServer(urls=item["urls"], username=item.get("username"),
                                        credential=item.get("credential")))
    return servers
