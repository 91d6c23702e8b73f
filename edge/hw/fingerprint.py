"""Driver for the R30x / AS608 / ZFM fingerprint readers on a door node's serial port.

Written here on pyserial instead of depending on pyfingerprint (one release, unmaintained, bare
``Exception``s, a fixed 2 s timeout) or adafruit-circuitpython-fingerprint (pulls Blinka, pyftdi and pyusb
onto the node): the protocol is small, and we need installer-facing errors and injectable timeouts.

Privacy: templates only. Block sync moves templates (LoadChar + UpChar out, DownChar + Store in), and this
driver has no command that fetches a fingerprint image at all.

Errors: :class:`HardwareError` when the reader is absent, silent or answers garbage (the message says what
an installer should check); :class:`ReaderError` (a ``HardwareError``) when it answers with a failure code;
:class:`EnrolmentError` when the person at the door should simply try again. "No finger" and "no match"
are ordinary results, not errors.

Calls block (a packet at 57600 baud takes milliseconds, an image ~0.5 s on real glass): the door role runs
them in a worker thread; a lock keeps two callers from interleaving packets.
"""

from __future__ import annotations

import contextlib
import errno
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn, Protocol

import serial

from edge.clock import Clock, SystemClock
from edge.errors import HardwareError, PinganError
from edge.hw.r30x import (
    BAUD_UNIT,
    DEFAULT_ADDRESS,
    HEADER_LEN,
    PACKET_SIZES,
    Cmd,
    Code,
    Pid,
    checksum,
    describe,
    encode,
    parse_header,
)

DEFAULT_BAUDRATE = 57600
DEFAULT_TIMEOUT = 1.0  # seconds for one packet; the slowest command (GenImg) answers in ~0.5 s
_POOR_IMAGE = {Code.IMAGE_MESSY, Code.FEATURE_FAIL, Code.INVALID_IMAGE}
_MAX_TEMPLATE = 4096  # larger than any template of the family (512 bytes on R307/AS608)
_WIRING = (
    "check the reader's power (3.3 V for R30x/AS608) and wiring (reader TX to Pi RX, reader RX to Pi TX, "
    "ground), that config.txt has enable_uart=1 and the serial login console is off, and that the baud "
    f"rate matches the reader ({DEFAULT_BAUDRATE} by default)"
)


class SerialLink(Protocol):
    """What the driver needs of a port: pyserial's ``Serial`` (or a test double)."""

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Match:
    slot: int
    score: int  # the reader's confidence; higher is surer (typically 50-300)


@dataclass(frozen=True)
class SystemParameters:
    status: int
    system_id: int
    capacity: int  # number of template slots
    security_level: int
    address: int
    packet_size: int  # data bytes per packet
    baudrate: int


class ReaderError(HardwareError):
    """The reader answered, with a confirmation code that means failure."""

    def __init__(self, command: str, code: int, hint: str = "") -> None:
        self.command, self.code = command, code
        super().__init__(f"fingerprint reader refused {command}: {describe(code)} (code 0x{code:02X})"
                         + (f"; {hint}" if hint else ""))


class EmptySlotError(PinganError, LookupError):
    """A slot asked for holds no template."""


class EnrolmentError(PinganError):
    """Enrolment did not complete; the person at the door can try again."""

    def __init__(self, reason: Literal["timeout", "poor_image", "mismatch"], message: str) -> None:
        self.reason = reason
        super().__init__(message)


def open_serial(port: str, baudrate: int, timeout: float) -> serial.Serial:
    """Open the port exclusively, turning pyserial's errors into what an installer should do."""
    try:
        return serial.Serial(port, baudrate=baudrate, timeout=timeout, write_timeout=timeout, exclusive=True)
    except serial.SerialException as exc:
        code = exc.errno
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise HardwareError(
                f"no fingerprint reader port {port}: check the reader (or its USB serial adapter) is plugged "
                "in, the port in the node config (/dev/serial0 for the Pi's UART, /dev/ttyUSB0 for a USB "
                "adapter) and that config.txt has enable_uart=1") from exc
        if code in (errno.EACCES, errno.EPERM):
            raise HardwareError(f"cannot open the fingerprint reader port {port}: permission denied; add the "
                                "agent's user to the 'dialout' group") from exc
        if code in (errno.EAGAIN, errno.EBUSY):
            raise HardwareError(f"the fingerprint reader port {port} is in use by another program (a serial "
                                "login console, a second agent?): stop it") from exc
        raise HardwareError(f"cannot open the fingerprint reader port {port}: {exc}") from exc


class FingerprintReader:
    """One R30x-family reader. Build it with :meth:`open`, or hand it a link (tests, other transports)."""

    def __init__(self, link: SerialLink, *, port: str = "the serial port", address: int = DEFAULT_ADDRESS,
                 password: int = 0, clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep,
                 poll_interval: float = 0.05) -> None:
        self._link = link
        self.port = port
        self.address = address
        self.password = password
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._poll = poll_interval
        self._lock = threading.RLock()
        self._params: SystemParameters | None = None
        self._closed = False

    @classmethod
    def open(cls, port: str, *, baudrate: int = DEFAULT_BAUDRATE, timeout: float = DEFAULT_TIMEOUT,
             address: int = DEFAULT_ADDRESS, password: int = 0, clock: Clock | None = None,
             sleep: Callable[[float], None] = time.sleep) -> FingerprintReader:
        """Open ``port``; every read on it gives up after ``timeout`` seconds."""
        link = open_serial(port, baudrate, timeout)
        return cls(link, port=port, address=address, password=password, clock=clock, sleep=sleep)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._link.close()

    def __enter__(self) -> FingerprintReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        slots = f" capacity={self._params.capacity}" if self._params else ""
        return f"<FingerprintReader {self.port} address=0x{self.address:08X}{slots} {state}>"

    # --- high-level API (the door role) ---

    def verify_password(self) -> None:
        """Check the reader is there and takes our password; raises HardwareError otherwise."""
        code, _ = self._command(Cmd.VFY_PWD, self.password.to_bytes(4, "big"), what="VfyPwd")
        if code == Code.WRONG_PASSWORD:
            raise ReaderError("VfyPwd", code, "set the reader password in the node config to the reader's "
                              "(factory default 0)")
        self._expect_ok("VfyPwd", code)

    def parameters(self) -> SystemParameters:
        """ReadSysPara, read once and cached (capacity and packet size do not change under us)."""
        with self._lock:
            if self._params is None:
                code, data = self._command(Cmd.READ_SYS_PARA, what="ReadSysPara", results=16)
                self._expect_ok("ReadSysPara", code)
                size_code = _u16(data, 12)
                self._params = SystemParameters(
                    status=_u16(data, 0), system_id=_u16(data, 2), capacity=_u16(data, 4),
                    security_level=_u16(data, 6), address=int.from_bytes(data[8:12], "big"),
                    packet_size=PACKET_SIZES[size_code] if size_code < len(PACKET_SIZES) else 128,
                    baudrate=_u16(data, 14) * BAUD_UNIT)
            return self._params

    def count(self) -> int:
        """How many templates the reader holds."""
        code, data = self._command(Cmd.TEMPLETE_NUM, what="TempleteNum", results=2)
        self._expect_ok("TempleteNum", code)
        return int.from_bytes(data[0:2], "big")

    def used_slots(self) -> set[int]:
        """The slots that hold a template (ReadIndexTable, one page per 256 slots)."""
        used: set[int] = set()
        for page in range((self.parameters().capacity + 255) // 256):
            code, data = self._command(Cmd.READ_INDEX_TABLE, bytes([page]), what="ReadIndexTable",
                                       results=32)
            self._expect_ok("ReadIndexTable", code)
            used.update(page * 256 + i * 8 + bit for i, byte in enumerate(data[:32])
                        for bit in range(8) if byte >> bit & 1)
        return used

    def capture(self) -> bool:
        """GenImg: take an image into the reader's image buffer. False when no finger is on the glass."""
        code, _ = self._command(Cmd.GEN_IMG, what="GenImg")
        if code == Code.NO_FINGER:
            return False
        self._expect_ok("GenImg", code, "clean the reader's glass; if it persists, replace the reader")
        return True

    def match_captured(self) -> Match | None:
        """Img2Tz + Search on the image :meth:`capture` took; None when it matches nobody or is unusable.

        For a door that must tell "no finger" (do nothing) from "unknown finger" (door.denied).
        """
        with self._lock:
            code, _ = self._command(Cmd.IMG2TZ, b"\x01", what="Img2Tz")
            if code in _POOR_IMAGE:
                return None
            self._expect_ok("Img2Tz", code)
            capacity = self.parameters().capacity
            span = (0).to_bytes(2, "big") + capacity.to_bytes(2, "big")
            code, data = self._command(Cmd.SEARCH, b"\x01" + span, what="Search", results=4)
            if code == Code.NOT_FOUND:
                return None
            self._expect_ok("Search", code)
            return Match(slot=_u16(data, 0), score=_u16(data, 2))

    def identify(self) -> Match | None:
        """GenImg + Img2Tz + Search: who is on the glass; None for no finger, an unknown or unusable one."""
        with self._lock:
            return self.match_captured() if self.capture() else None

    def enrol(self, slot: int, scans: int = 2, wait_finger: float = 10.0,
              on_step: Callable[[str], None] | None = None, overwrite: bool = False) -> int:
        """Enrol the finger presented into ``slot`` and return the slot.

        Two scans (the family's default): scan into buffer 1, wait for the finger to lift, scan into
        buffer 2, RegModel merges them, Store writes the model. ``scans=1`` stores a single scan (weaker).
        ``wait_finger`` bounds each wait for a finger to be placed or lifted, measured on the injected
        clock; ``on_step("place" | "lift")`` is called before each wait, to prompt the person (LED,
        buzzer) — tests move the simulated finger there. Raises EnrolmentError when the person should try
        again, ValueError for a bad slot, or an occupied one unless ``overwrite``.
        """
        if scans not in (1, 2):
            raise ValueError("R30x readers have two character buffers: enrol with 1 or 2 scans")
        with self._lock:
            self._check_slot(slot)
            if not overwrite and slot in self.used_slots():
                raise ValueError(f"slot {slot} already holds a template: delete it, or pass overwrite=True")
            for buffer in range(1, scans + 1):
                if buffer > 1:
                    self._wait(on_step, "lift", wait_finger, want_finger=False)
                self._wait(on_step, "place", wait_finger, want_finger=True)
                code, _ = self._command(Cmd.IMG2TZ, bytes([buffer]), what="Img2Tz")
                if code in _POOR_IMAGE:
                    raise EnrolmentError("poor_image", f"scan {buffer} was unusable ({describe(code)}): "
                                         "place the finger flat and still, then try again")
                self._expect_ok("Img2Tz", code)
            if scans == 2:
                code, _ = self._command(Cmd.REG_MODEL, what="RegModel")
                if code == Code.ENROLL_MISMATCH:
                    raise EnrolmentError("mismatch", "the two scans were not the same finger: try again "
                                         "with the same finger")
                self._expect_ok("RegModel", code)
            self._store(slot)
            return slot

    def delete(self, slot: int) -> None:
        """DeletChar one slot (deleting an empty slot is not an error)."""
        with self._lock:
            self._check_slot(slot)
            code, _ = self._command(Cmd.DELET_CHAR, slot.to_bytes(2, "big") + (1).to_bytes(2, "big"),
                                    what="DeletChar")
            self._expect_ok("DeletChar", code)

    def clear(self) -> None:
        """Empty: delete every template."""
        code, _ = self._command(Cmd.EMPTY, what="Empty")
        self._expect_ok("Empty", code)

    def download_template(self, slot: int) -> bytes:
        """LoadChar + UpChar: the template in ``slot``, to sync to the block's other doors (encrypted)."""
        with self._lock:
            self._check_slot(slot)
            code, _ = self._command(Cmd.LOAD_CHAR, b"\x01" + slot.to_bytes(2, "big"), what="LoadChar")
            if code == Code.READ_TEMPLATE_FAIL:
                raise EmptySlotError(f"fingerprint slot {slot} holds no template")
            self._expect_ok("LoadChar", code)
            code, _ = self._command(Cmd.UP_CHAR, b"\x01", what="UpChar")
            self._expect_ok("UpChar", code)
            data = bytearray()
            while True:
                pid, chunk = self._receive("UpChar data")
                if pid not in (Pid.DATA, Pid.END):
                    self._garbage(chunk, "UpChar data", f"package identifier 0x{pid:02X} in a data transfer")
                data += chunk
                if len(data) > _MAX_TEMPLATE:
                    self._garbage(b"", "UpChar data", f"more than {_MAX_TEMPLATE} bytes of template")
                if pid == Pid.END:
                    return bytes(data)

    def upload_template(self, slot: int, data: bytes, overwrite: bool = True) -> None:
        """DownChar + Store: put a template synced from another door into ``slot``, then read it back."""
        if not 0 < len(data) <= _MAX_TEMPLATE:
            raise ValueError(f"a template of {len(data)} bytes cannot be right")
        with self._lock:
            self._check_slot(slot)
            if not overwrite and slot in self.used_slots():
                raise ValueError(f"slot {slot} already holds a template")
            code, _ = self._command(Cmd.DOWN_CHAR, b"\x01", what="DownChar")
            self._expect_ok("DownChar", code)
            size = self.parameters().packet_size
            chunks = [data[i:i + size] for i in range(0, len(data), size)]
            for i, chunk in enumerate(chunks):
                self._send(Pid.END if i == len(chunks) - 1 else Pid.DATA, chunk)
            self._store(slot)
            if self.download_template(slot) != data:
                raise HardwareError(f"the template stored in slot {slot} differs from the one sent: the "
                                    f"serial line is corrupting data; {_WIRING}")

    # --- packets ---

    def _store(self, slot: int) -> None:
        code, _ = self._command(Cmd.STORE, b"\x01" + slot.to_bytes(2, "big"), what="Store")
        self._expect_ok("Store", code)

    def _check_slot(self, slot: int) -> None:
        capacity = self.parameters().capacity
        if not 0 <= slot < capacity:
            raise ValueError(f"slot {slot} is outside this reader's library (0..{capacity - 1})")

    def _wait(self, on_step: Callable[[str], None] | None, step: str, limit: float,
              want_finger: bool) -> None:
        if on_step is not None:
            on_step(step)
        deadline = self._clock.monotonic() + limit
        while self.capture() != want_finger:
            if self._clock.monotonic() >= deadline:
                raise EnrolmentError("timeout", f"no finger was {'placed' if want_finger else 'lifted'} "
                                     f"within {limit:g} s: try again")
            self._sleep(self._poll)

    def _command(self, cmd: Cmd, args: bytes = b"", *, what: str, results: int = 0) -> tuple[int, bytes]:
        """Send one command; return (confirmation code, the ``results`` bytes an OK ack must carry)."""
        with self._lock:
            if self._closed:
                raise HardwareError(f"the fingerprint reader on {self.port} is closed")
            self._flush()
            self._send(Pid.COMMAND, bytes([cmd]) + args)
            pid, payload = self._receive(what)
            if pid != Pid.ACK or not payload:
                self._garbage(payload, what, f"package identifier 0x{pid:02X} with {len(payload)} bytes "
                              "where an ack was due")
            if payload[0] == Code.OK and len(payload) - 1 < results:
                self._garbage(payload, what, f"{len(payload) - 1} result bytes, expected {results}")
            return payload[0], payload[1:]

    def _expect_ok(self, what: str, code: int, hint: str = "") -> None:
        if code != Code.OK:
            raise ReaderError(what, code, hint)

    def _send(self, pid: int, payload: bytes) -> None:
        try:
            self._link.write(encode(pid, payload, self.address))
        except (OSError, serial.SerialException) as exc:
            raise HardwareError(f"cannot write to the fingerprint reader on {self.port} ({exc}): check the "
                                "reader or its USB adapter is still connected") from exc

    def _receive(self, what: str) -> tuple[int, bytes]:
        header = self._read(HEADER_LEN, what)
        try:
            address, pid, length = parse_header(header)
        except ValueError as exc:
            self._garbage(header, what, str(exc))
        if address != self.address:
            self._garbage(header, what, f"answer from address 0x{address:08X}, not 0x{self.address:08X}; set "
                          "the reader address in the node config if it was changed")
        body = self._read(length, what, header)
        payload = body[:-2]
        if int.from_bytes(body[-2:], "big") != checksum(pid, payload):
            self._garbage(header + body, what, "bad checksum")
        return pid, payload

    def _read(self, size: int, what: str, before: bytes = b"") -> bytes:
        try:
            data = self._link.read(size)
        except (OSError, serial.SerialException) as exc:
            raise HardwareError(f"cannot read from the fingerprint reader on {self.port} ({exc}): check the "
                                "reader or its USB adapter is still connected") from exc
        if not data and not before:
            timeout = getattr(self._link, "timeout", None)
            within = f" within {timeout:g} s" if isinstance(timeout, int | float) else ""
            raise HardwareError(f"the fingerprint reader on {self.port} did not answer {what}{within}: "
                                f"{_WIRING}")
        if len(data) < size:
            self._garbage(before + data, what, f"the packet stopped after {len(before) + len(data)} bytes")
        return data

    def _flush(self) -> None:
        try:
            self._link.reset_input_buffer()
        except (OSError, serial.SerialException, termios.error) as exc:
            raise HardwareError(f"cannot use the fingerprint reader port {self.port} ({exc}): check the "
                                "reader or its USB adapter is still connected") from exc

    def _garbage(self, data: bytes, what: str, reason: str) -> NoReturn:
        """Raise the installer's error for an answer that is not the protocol; drop what is still queued."""
        with contextlib.suppress(Exception):  # the error below is the one worth reporting
            self._link.reset_input_buffer()
        shown = data[:16].hex(" ") + (" ..." if len(data) > 16 else "")
        raise HardwareError(f"the fingerprint reader on {self.port} answered {what} with garbage ({reason}; "
                            f"got {shown or 'nothing'}): check the baud rate matches the reader "
                            f"({DEFAULT_BAUDRATE} by default), that no login console or other program uses "
                            "the port, and the ground wire")


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset:offset + 2], "big")
