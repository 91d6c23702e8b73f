"""A fingerprint reader that speaks the R30x protocol on a pseudo-terminal, for the demo and the tests.

Why a pty: the real driver (and any R30x client: pyfingerprint, Adafruit's library) opens its path like
``/dev/serial0``, so what the tests exercise is the real driver on a real tty. pyserial's ``loop://`` only
echoes and cannot play a reader.

Fingers are integers. Finger N always has the same template (:func:`template_for`), so two simulators agree
on a finger and the block-sync path (a template downloaded from one door, uploaded into another, then
matched there) is tested for real. ``ReaderSimulator(enrolled=N)`` starts with fingers 0..N-1 in slots
0..N-1. The simulator keeps no images (UpImage is refused), as the privacy rule wants of the real readers.

In a process (``pingan-edge sim reader [--enrolled N]``, or ``python -m edge.sim.reader``), :func:`serve`
prints the pty's path as its first line, then obeys one command per line on stdin:

    finger N        put finger N on the glass (enrolled or not)
    finger none     lift the finger (also: lift)
    enrol N [SLOT]  store finger N's template in SLOT (default: the first free slot)
    silent [off]    stop answering, like a dead or unplugged reader / answer again
    garbage [off]   answer noise, like a wrong baud rate / answer properly
    status          print the state as one JSON line
    quit            stop

and answers each with one line, ``ok ...`` or ``error: ...``. End of stdin leaves it serving; SIGINT and
SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import select
import signal
import sys
import threading
import tty
from collections.abc import Callable
from typing import TextIO

from edge.hw.r30x import (
    BAUD_UNIT,
    DEFAULT_ADDRESS,
    HEADER_LEN,
    MAX_LENGTH,
    PACKET_SIZES,
    START,
    Cmd,
    Code,
    Pid,
    checksum,
    encode,
)

TEMPLATE_SIZE = 512  # an R307/AS608 character file
_NOISE = bytes.fromhex("fe00f88000fe7800f0800600")  # what a wrong baud rate makes of an ack: no start code
_MAX_DOWNLOAD = 4096


def template_for(finger: int) -> bytes:
    """The fake template of ``finger``: deterministic, so every simulator gives a finger the same one."""
    head = b"\x03\x03" + finger.to_bytes(4, "big")
    return head + hashlib.shake_256(b"pingan-sim-finger:%d" % finger).digest(TEMPLATE_SIZE - len(head))


def finger_of(template: bytes | None) -> int | None:
    """Which finger a template was made from, or None for bytes no finger makes."""
    if template is None or len(template) != TEMPLATE_SIZE:
        return None
    finger = int.from_bytes(template[2:6], "big")
    return finger if template == template_for(finger) else None


def _score(template: bytes) -> int:
    return 60 + sum(template[6:10]) % 140  # plausible, and the same for a finger every time


class ReaderSimulator:
    """An R30x reader on a new pty: ``start()``, give ``.port`` to a client, ``stop()``.

    Tests steer it with :meth:`place_finger`, :meth:`enrol_finger`, and the ``silent``, ``garbage`` and
    ``bad_checksum`` flags. :meth:`feed` is the protocol alone (bytes in, bytes out), without the pty.
    """

    def __init__(self, enrolled: int = 0, *, capacity: int = 300, address: int = DEFAULT_ADDRESS,
                 password: int = 0, packet_size: int = 128) -> None:
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet size must be one of {PACKET_SIZES}")
        if not 0 <= enrolled <= capacity:
            raise ValueError(f"cannot enrol {enrolled} fingers in {capacity} slots")
        self.capacity, self.address, self.password = capacity, address, password
        self.silent = False  # read and ignore everything, like a dead reader
        self.garbage = False  # answer every command with noise, like a wrong baud rate
        self.bad_checksum = False  # answer with a wrong checksum, like a noisy line
        self._packet_code = PACKET_SIZES.index(packet_size)
        self._security = 3
        self._lock = threading.Lock()
        self._library: dict[int, bytes] = {slot: template_for(slot) for slot in range(enrolled)}
        self._finger: int | None = None
        self._image: int | None = None
        self._buffers: dict[int, bytes | None] = {1: None, 2: None}
        self._rx = bytearray()
        self._download: tuple[int, bytearray] | None = None  # DownChar under way: (buffer, bytes so far)
        self._random = 0
        self._master = self._slave = self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._port = ""

    # --- steering ---

    @property
    def port(self) -> str:
        if not self._port:
            raise RuntimeError("the reader simulator is not started")
        return self._port

    @property
    def finger(self) -> int | None:
        return self._finger

    @property
    def enrolled(self) -> dict[int, int | None]:
        """Slot -> finger, for every slot holding a template (None: bytes that no finger makes)."""
        with self._lock:
            return {slot: finger_of(t) for slot, t in sorted(self._library.items())}

    def place_finger(self, finger: int | None) -> None:
        """Put ``finger`` on the glass, or lift it with None."""
        if finger is not None and not 0 <= finger < 2**32:
            raise ValueError("a finger is a number from 0 to 2**32 - 1")
        with self._lock:
            self._finger = finger

    def enrol_finger(self, finger: int, slot: int | None = None) -> int:
        """Store ``finger``'s template directly (as if enrolled earlier) and return its slot."""
        with self._lock:
            if slot is None:
                slot = next((s for s in range(self.capacity) if s not in self._library), None)
                if slot is None:
                    raise ValueError("the simulated reader's library is full")
            if not 0 <= slot < self.capacity:
                raise ValueError(f"slot {slot} is outside 0..{self.capacity - 1}")
            self._library[slot] = template_for(finger)
            return slot

    def __repr__(self) -> str:
        state = "silent" if self.silent else "garbage" if self.garbage else "answering"
        return (f"<ReaderSimulator {self._port or 'not started'} {state} finger={self._finger} "
                f"templates={len(self._library)}>")

    # --- the pty ---

    def start(self) -> ReaderSimulator:
        if self._thread is not None:
            raise RuntimeError("the reader simulator is already started")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing before a client configures the port
        os.set_blocking(self._master, False)
        self._port = os.ttyname(self._slave)  # we keep the slave open so a client's close is no EIO for us
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"reader-sim {self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1

    def __enter__(self) -> ReaderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # EIO: nobody has the port open; wait for the next client
                if select.select([self._wake_r], [], [], 0.1)[0]:
                    return
                continue
            reply = self.feed(data)
            if reply:
                self._write(reply)

    def _write(self, data: bytes) -> None:
        """Write without ever blocking: a real UART's bytes are lost too when nobody reads them."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view):]
            except (BlockingIOError, OSError):
                return

    # --- the protocol ---

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes the reader answers."""
        if self.silent:
            self._rx.clear()
            return b""
        self._rx += data
        out = bytearray()
        while True:
            start = self._rx.find(START.to_bytes(2, "big"))
            if start < 0:
                del self._rx[:-1]  # keep a trailing 0xEF: it may start the next header
                break
            del self._rx[:start]
            if len(self._rx) < HEADER_LEN:
                break
            length = int.from_bytes(self._rx[7:9], "big")
            if not 2 <= length <= MAX_LENGTH:
                del self._rx[:2]  # not a header after all: resynchronise
                continue
            if len(self._rx) < HEADER_LEN + length:
                break
            packet = bytes(self._rx[:HEADER_LEN + length])
            del self._rx[:HEADER_LEN + length]
            out += self._packet(packet)
        return bytes(out)

    def _packet(self, packet: bytes) -> bytes:
        address, pid = int.from_bytes(packet[2:6], "big"), packet[6]
        payload, sent = packet[HEADER_LEN:-2], int.from_bytes(packet[-2:], "big")
        if address != self.address:
            return b""  # another reader's packet on a shared line: a real reader keeps quiet
        if sent != checksum(pid, payload):
            self._download = None
            return self._ack(Code.PACKET_ERROR)
        if pid in (Pid.DATA, Pid.END):
            self._data(pid, payload)
            return b""
        if pid != Pid.COMMAND or not payload:
            return self._ack(Code.PACKET_ERROR)
        self._download = None
        if self.garbage:
            return _NOISE
        handler = self._HANDLERS.get(payload[0])
        if handler is None:
            return self._ack(Code.PACKET_ERROR)
        try:
            with self._lock:
                return handler(self, payload[1:])
        except IndexError:  # arguments missing
            return self._ack(Code.PACKET_ERROR)

    def _data(self, pid: int, payload: bytes) -> None:
        if self._download is None:
            return  # data nobody asked for: ignored, as by a real reader
        buffer, data = self._download
        data += payload
        if len(data) > _MAX_DOWNLOAD:
            self._download = None
        elif pid == Pid.END:
            self._buffers[buffer] = bytes(data)
            self._download = None

    def _ack(self, code: int, results: bytes = b"") -> bytes:
        return self._frame(Pid.ACK, bytes([code]) + results)

    def _frame(self, pid: int, payload: bytes) -> bytes:
        packet = encode(pid, payload, self.address)
        if self.bad_checksum:
            packet = packet[:-1] + bytes([(packet[-1] + 1) & 0xFF])
        return packet

    def _slot_ok(self, slot: int) -> bool:
        return 0 <= slot < self.capacity

    def _verify_password(self, args: bytes) -> bytes:
        ok = len(args) == 4 and int.from_bytes(args, "big") == self.password
        return self._ack(Code.OK if ok else Code.WRONG_PASSWORD)

    def _set_password(self, args: bytes) -> bytes:
        self.password = int.from_bytes(args[0:4], "big")
        return self._ack(Code.OK)

    def _gen_img(self, args: bytes) -> bytes:
        self._image = self._finger
        return self._ack(Code.NO_FINGER if self._finger is None else Code.OK)

    def _img2tz(self, args: bytes) -> bytes:
        if args[0] not in self._buffers:
            return self._ack(Code.INVALID_REGISTER)
        if self._image is None:
            return self._ack(Code.INVALID_IMAGE)
        self._buffers[args[0]] = template_for(self._image)
        return self._ack(Code.OK)

    def _reg_model(self, args: bytes) -> bytes:
        one, two = self._buffers[1], self._buffers[2]
        if one is None or one != two:
            return self._ack(Code.ENROLL_MISMATCH)
        return self._ack(Code.OK)  # the model is in both buffers, as on the real reader

    def _match(self, args: bytes) -> bytes:
        one, two = self._buffers[1], self._buffers[2]
        if one is None or one != two:
            return self._ack(Code.NO_MATCH, bytes(2))
        return self._ack(Code.OK, _score(one).to_bytes(2, "big"))

    def _store(self, args: bytes) -> bytes:
        buffer, slot = args[0], int.from_bytes(args[1:3], "big")
        if len(args) < 3 or buffer not in self._buffers:
            return self._ack(Code.PACKET_ERROR)
        if not self._slot_ok(slot):
            return self._ack(Code.BAD_LOCATION)
        template = self._buffers[buffer]
        if template is None:
            return self._ack(Code.PACKET_ERROR)
        self._library[slot] = template
        return self._ack(Code.OK)

    def _load_char(self, args: bytes) -> bytes:
        buffer, slot = args[0], int.from_bytes(args[1:3], "big")
        if len(args) < 3 or buffer not in self._buffers:
            return self._ack(Code.PACKET_ERROR)
        if not self._slot_ok(slot):
            return self._ack(Code.BAD_LOCATION)
        if slot not in self._library:
            return self._ack(Code.READ_TEMPLATE_FAIL)
        self._buffers[buffer] = self._library[slot]
        return self._ack(Code.OK)

    def _search(self, args: bytes) -> bytes:
        buffer, first, count = args[0], int.from_bytes(args[1:3], "big"), int.from_bytes(args[3:5], "big")
        if len(args) < 5 or buffer not in self._buffers:
            return self._ack(Code.PACKET_ERROR)
        wanted = self._buffers[buffer]
        for slot in sorted(self._library):
            if first <= slot < first + count and self._library[slot] == wanted:
                return self._ack(Code.OK, slot.to_bytes(2, "big") + _score(wanted).to_bytes(2, "big"))
        return self._ack(Code.NOT_FOUND, bytes(4))

    def _delete(self, args: bytes) -> bytes:
        first, count = int.from_bytes(args[0:2], "big"), int.from_bytes(args[2:4], "big")
        if len(args) < 4 or not self._slot_ok(first) or first + count > self.capacity:
            return self._ack(Code.DELETE_FAIL)
        for slot in range(first, first + count):
            self._library.pop(slot, None)
        return self._ack(Code.OK)

    def _empty(self, args: bytes) -> bytes:
        self._library.clear()
        return self._ack(Code.OK)

    def _up_char(self, args: bytes) -> bytes:
        template = self._buffers.get(args[0])
        if template is None:
            return self._ack(Code.UPLOAD_FEATURE_FAIL)
        size = PACKET_SIZES[self._packet_code]
        chunks = [template[i:i + size] for i in range(0, len(template), size)]
        last = len(chunks) - 1
        return self._ack(Code.OK) + b"".join(
            self._frame(Pid.END if i == last else Pid.DATA, chunk) for i, chunk in enumerate(chunks))

    def _down_char(self, args: bytes) -> bytes:
        if args[0] not in self._buffers:
            return self._ack(Code.PACKET_RESPONSE_FAIL)
        self._download = (args[0], bytearray())
        return self._ack(Code.OK)

    def _up_image(self, args: bytes) -> bytes:
        return self._ack(Code.UPLOAD_IMAGE_FAIL)  # images never leave a reader (design: Privacy)

    def _read_sys_para(self, args: bytes) -> bytes:
        words = (0, 0, self.capacity, self._security)
        results = b"".join(w.to_bytes(2, "big") for w in words) + self.address.to_bytes(4, "big")
        results += self._packet_code.to_bytes(2, "big") + (57600 // BAUD_UNIT).to_bytes(2, "big")
        return self._ack(Code.OK, results)

    def _set_sys_para(self, args: bytes) -> bytes:
        register, value = args[0], args[1]
        if register == 4:  # baud rate: meaningless on a pty
            return self._ack(Code.OK)
        if register == 5 and 1 <= value <= 5:
            self._security = value
            return self._ack(Code.OK)
        if register == 6 and value < len(PACKET_SIZES):
            self._packet_code = value
            return self._ack(Code.OK)
        return self._ack(Code.INVALID_REGISTER)

    def _templete_num(self, args: bytes) -> bytes:
        return self._ack(Code.OK, len(self._library).to_bytes(2, "big"))

    def _read_index_table(self, args: bytes) -> bytes:
        table = bytearray(32)
        for slot in self._library:
            if slot // 256 == args[0]:
                table[slot % 256 // 8] |= 1 << (slot % 8)
        return self._ack(Code.OK, bytes(table))

    def _get_random_code(self, args: bytes) -> bytes:
        self._random += 1
        return self._ack(Code.OK, hashlib.sha256(b"%d" % self._random).digest()[:4])

    def _get_echo(self, args: bytes) -> bytes:
        return self._ack(Code.MODULE_OK)

    _HANDLERS: dict[int, Callable[[ReaderSimulator, bytes], bytes]] = {
        Cmd.VFY_PWD: _verify_password, Cmd.SET_PWD: _set_password, Cmd.GEN_IMG: _gen_img,
        Cmd.IMG2TZ: _img2tz, Cmd.REG_MODEL: _reg_model, Cmd.MATCH: _match, Cmd.STORE: _store,
        Cmd.LOAD_CHAR: _load_char, Cmd.SEARCH: _search, Cmd.HIGH_SPEED_SEARCH: _search,
        Cmd.DELET_CHAR: _delete, Cmd.EMPTY: _empty, Cmd.UP_CHAR: _up_char, Cmd.DOWN_CHAR: _down_char,
        Cmd.UP_IMAGE: _up_image, Cmd.READ_SYS_PARA: _read_sys_para, Cmd.SET_SYS_PARA: _set_sys_para,
        Cmd.TEMPLETE_NUM: _templete_num, Cmd.READ_INDEX_TABLE: _read_index_table,
        Cmd.GET_RANDOM_CODE: _get_random_code, Cmd.GET_ECHO: _get_echo,
    }


# --- as a process ---


def control(sim: ReaderSimulator, line: str) -> str:
    """Obey one stdin command (see the module docstring); return the answer line."""
    words = line.split()
    try:
        match words:
            case ["finger", "none"] | ["lift"]:
                sim.place_finger(None)
                return "ok finger none"
            case ["finger", n]:
                sim.place_finger(int(n))
                return f"ok finger {int(n)}"
            case ["enrol", n, *slot] if len(slot) <= 1:
                where = sim.enrol_finger(int(n), int(slot[0]) if slot else None)
                return f"ok enrolled finger {int(n)} in slot {where}"
            case ["silent" | "garbage" as flag, *rest] if rest in ([], ["on"], ["off"]):
                setattr(sim, flag, rest != ["off"])
                return f"ok {flag} {'off' if rest == ['off'] else 'on'}"
            case ["status"]:
                return json.dumps({"port": sim.port, "finger": sim.finger, "silent": sim.silent,
                                   "garbage": sim.garbage, "enrolled": sim.enrolled})
    except ValueError as exc:
        return f"error: {exc}"
    return (f"error: unknown command {line.strip()!r} (finger N|none, enrol N [SLOT], silent [off], "
            "garbage [off], status, quit)")


def serve(enrolled: int = 0, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """Run a simulated reader on a new pty until SIGINT/SIGTERM (or ``quit``); see the module docstring."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    stop = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():  # signals can only be caught there
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    sim = ReaderSimulator(enrolled).start()
    try:
        print(sim.port, file=stdout, flush=True)

        def read_commands() -> None:
            for line in stdin:
                if line.strip() == "quit":
                    stop.set()
                    return
                if line.strip():
                    print(control(sim, line), file=stdout, flush=True)

        threading.Thread(target=read_commands, name="reader-sim stdin", daemon=True).start()
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.sim.reader",
                                     description="Serve a simulated R30x fingerprint reader on a new pty.")
    parser.add_argument("--enrolled", type=int, default=0, help="fingers 0..N-1 enrolled in slots 0..N-1")
    serve(parser.parse_args(argv).enrolled)


if __name__ == "__main__":
    main()
