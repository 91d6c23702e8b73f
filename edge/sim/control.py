"""The local control socket of a node with simulated pins (design.md "Simulated hardware").

The demo, the tests and an installer act on a simulated node through it: press the button,
open the enclosure, read the LED; at a door, touch the simulated reader with a finger (``finger``),
open or close the door leaf (``door``), switch the fire input (``fire``), press exit (``exit``), or
make the reader answer garbage or nothing (``reader``), or run the self-test now as the
nightly schedule would (``selftest``). It drives gpiozero's mock pins, so the node's real input
path (callbacks, debounce, coalescing) is what runs. One JSON object per line each way.
Only a node with mock pins opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import PinganError

if TYPE_CHECKING:
    from edge.agent.node import NodeAgent

log = logging.getLogger(__name__)


class ControlServer:
    def __init__(self, path: Path, agent: NodeAgent) -> None:
        self.path = Path(path)
        self.agent = agent
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)
        log.info("simulated hardware control on %s", self.path)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line or b"{}")
                response = await self.handle(request)
            except (ValueError, PinganError) as exc:
                response = {"ok": False, "error": str(exc)}
            writer.write(json.dumps(response).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        pins = self.agent.pins
        cmd = request.get("cmd")
        if cmd in ("press", "hold", "release", "tamper") and not hasattr(pins, "sim_button"):
            raise ValueError(f"{cmd!r} is for alarm poles; a door takes finger, door, fire, exit")
        if cmd == "press":
            hold = float(request.get("hold_s", 0.2))
            times = int(request.get("times", 1))
            for i in range(times):
                pins.sim_button(True)
                await asyncio.sleep(hold)
                pins.sim_button(False)
                if i < times - 1:
                    await asyncio.sleep(0.15)
            await asyncio.sleep(0.1)  # let the role see the edges before we report its state
        elif cmd == "hold":
            pins.sim_button(True)
        elif cmd == "release":
            pins.sim_button(False)
        elif cmd == "tamper":
            pins.sim_enclosure(bool(request.get("open", True)))
            await asyncio.sleep(0.1)
        elif cmd in ("finger", "door", "fire", "exit", "reader"):
            return await self._door(cmd, request)
        elif cmd == "emit":  # a burst of events through the real outbox, for fault tests and benches
            kind = str(request.get("kind", "detection.person"))
            ids = [str(self.agent.role.emit(kind, {"n": i, "burst": True}).id)
                   for i in range(int(request.get("n", 1)))]
            return {"ok": True, "ids": ids, "state": self.agent.role.state()}
        elif cmd == "selftest":  # the nightly run now (trigger "schedule"), without waiting for the slot
            tester = self.agent.selftest
            if tester is None:
                raise ValueError("this node has no self-test")
            result = await tester.run("schedule", only=request.get("checks"))
            return {"ok": True, "result": result.dump(), "state": self.agent.role.state()}
        elif cmd != "state":
            raise ValueError(f"unknown control command {cmd!r}")
        return {"ok": True, "state": self.agent.role.state()}

    async def _door(self, cmd: str, request: dict[str, Any]) -> dict[str, Any]:
        """A door node's simulated hardware: a finger on the reader, the door leaf, the fire panel, exit."""
        from edge.hw.door_pins import DoorPins

        pins = self.agent.pins
        if not isinstance(pins, DoorPins):
            raise ValueError(f"{cmd!r} is for rental_door nodes")
        if cmd == "reader":  # make the simulated reader misbehave: garbage frames, silence
            sim = self.agent.sim_reader
            if sim is None:
                raise ValueError("this door's reader is not simulated (reader.port: sim)")
            sim.garbage = bool(request.get("garbage", False))
            sim.silent = bool(request.get("silent", False))
            await asyncio.sleep(float(request.get("wait_s", 0.3)))
        elif cmd == "finger":
            sim = self.agent.sim_reader
            if sim is None:
                raise ValueError("this door's reader is not simulated (reader.port: sim)")
            value = str(request.get("finger", "none")).strip().lower()
            if value in ("none", "lift", ""):
                sim.place_finger(None)
            else:
                finger = UNKNOWN_FINGER if value == "unknown" else int(value)
                sim.place_finger(finger)
                if not request.get("hold", False):  # a touch: on the glass for hold_s, then lifted
                    await asyncio.sleep(float(request.get("hold_s", 0.6)))
                    sim.place_finger(None)
            await asyncio.sleep(0.1)
        elif cmd == "door":
            pins.sim_door(str(request.get("state", "open")) == "open")
            await asyncio.sleep(0.1)
        elif cmd == "fire":
            pins.sim_fire(str(request.get("state", "on")) == "on")
            await asyncio.sleep(0.1)
        else:
            pins.sim_exit(True)
            await asyncio.sleep(float(request.get("hold_s", 0.2)))
            pins.sim_exit(False)
            await asyncio.sleep(0.1)
        return {"ok": True, "state": self.agent.role.state()}


UNKNOWN_FINGER = 999_999  # a finger no simulated reader has enrolled


def send_control(path: Path, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Client side, for ``pingan-edge sim``: one request, one answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            here = sorted(p.stem for p in path.parent.glob("*.sock")) if path.parent.is_dir() else []
            listening = (f"listening in {path.parent}: {', '.join(here[:12])}{' …' if len(here) > 12 else ''}"
                         if here else f"no node listens in {path.parent}")
            raise PinganError(f"no simulated node listens on {path} ({listening}); is it running with mock pins? "
                              f"The demo's nodes listen in /tmp/pingan-sim (the default); a node started with "
                              f"PINGAN_SIM_DIR=DIR listens in DIR, so give sim the same PINGAN_SIM_DIR") from exc
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data or b"{}")
