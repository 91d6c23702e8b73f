"""SIP over UDP and TCP on asyncio: one socket of each on the hub's SIP port, and the connection to the city.

Requests that arrive go to one handler (the adapter) with a ``reply`` that answers the way they came.
Requests the hub sends (REGISTER, MESSAGE, NOTIFY) are client transactions: :meth:`SipTransport.request`
sends one, resends it on UDP (RFC 3261 timer A: 0.5 s doubling) and returns the final response, or None
after ``timeout``. TCP is framed by Content-Length (RFC 3261 18.3). Nothing a peer sends stops the loop:
malformed input is answered 400 (or dropped when it is not even a request) with one log line per
minute at most, an oversized body 413 (TCP; the connection is then closed, it cannot be resynchronised)
or dropped (UDP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from hub.gb28181.sip import (
    MAX_BODY,
    MAX_HEAD,
    BodyTooLarge,
    SipMessage,
    SipParseError,
    Upstream,
    content_length,
    parse_datagram,
    parse_head,
    response_to,
)

log = logging.getLogger(__name__)
Addr = tuple[str, int]
Reply = Callable[[SipMessage], None]
Handler = Callable[[SipMessage, Reply, Addr], Awaitable[None]]


class RateLog:
    """At most one log line per key per ``every_s``; the lines in between are counted, not written."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, text: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every_s:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        log.warning(text + (f" ({skipped} more like it not logged)" if skipped else ""), *args)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.owner.datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        self.owner.ratelog.warning("udp-error", "GB28181 UDP: %s", exc)


class SipTransport:
    def __init__(self, upstream: Upstream, *, host: str, port: int, handler: Handler) -> None:
        self.upstream = upstream
        self.host, self.port = host, port
        self.handler = handler
        self.ratelog = RateLog()
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._up_writer: asyncio.StreamWriter | None = None
        self._up_lock = asyncio.Lock()
        self._pending: dict[tuple[str, int, str], asyncio.Future[SipMessage]] = {}
        self._answered: dict[tuple[str, int, str], tuple[float, bytes]] = {}  # resent on a retransmission
        self._in_progress: set[tuple[str, int, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.stats = {"malformed": 0, "oversized": 0}

    # --- life

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port),
                                                           reuse_port=False)
        self._udp = transport
        self._server = await asyncio.start_server(self._serve_tcp, self.host, self.port, limit=MAX_HEAD + 4)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._udp is not None:
            self._udp.close()
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()

    def local_addr(self) -> Addr:
        """The address the platform reaches us at (for Via and Contact): the source address towards it."""
        if self.upstream.transport == "tcp" and self._up_writer is not None:
            name = self._up_writer.get_extra_info("sockname")
            return str(name[0]), self.port
        if self.host not in ("0.0.0.0", "::", ""):
            return self.host, self.port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((self.upstream.host, self.upstream.port))
                return str(s.getsockname()[0]), self.port
            except OSError:
                return "127.0.0.1", self.port

    @property
    def transport_name(self) -> str:
        return self.upstream.transport.upper()

    # --- sending

    async def _upstream_writer(self) -> asyncio.StreamWriter:
        async with self._up_lock:
            if self._up_writer is None or self._up_writer.is_closing():
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.upstream.host, self.upstream.port, limit=MAX_HEAD + 4), 5)
                self._up_writer = writer
                self._spawn(self._read_stream(reader, writer, (self.upstream.host, self.upstream.port)))
            return self._up_writer

    async def send_upstream(self, msg: SipMessage) -> None:
        data = msg.encode()
        if self.upstream.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, (self.upstream.host, self.upstream.port))
            return
        writer = await self._upstream_writer()
        writer.write(data)
        await writer.drain()

    async def request(self, msg: SipMessage, timeout: float = 8.0) -> SipMessage | None:
        """Send a request to the platform; its final response, or None (no answer, or no connection)."""
        number, method = msg.cseq
        key = (msg.call_id, number, method)
        fut: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            deadline = time.monotonic() + timeout
            interval = 0.5
            while True:
                try:
                    await self.send_upstream(msg)
                except (TimeoutError, OSError) as exc:
                    self.ratelog.warning("connect", "GB28181: cannot reach the city platform at %s:%s: %s",
                                         self.upstream.host, self.upstream.port, exc)
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    wait = min(interval, left) if self.upstream.transport == "udp" else left
                    return await asyncio.wait_for(asyncio.shield(fut), wait)
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        return None
                    interval = min(interval * 2, 4.0)
        finally:
            self._pending.pop(key, None)

    # --- receiving

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def datagram(self, data: bytes, addr: Addr) -> None:
        if data.strip(b"\r\n") == b"":
            return  # keepalive CRLFs
        if self._udp is None:
            return
        udp = self._udp

        def reply(resp: SipMessage) -> None:
            udp.sendto(resp.encode(), addr)

        try:
            msg = parse_datagram(data)
        except BodyTooLarge:
            self.stats["oversized"] += 1
            self.ratelog.warning("oversized", "GB28181: dropped a datagram from %s:%s with a body over %d bytes",
                                 addr[0], addr[1], MAX_BODY)
            return
        except SipParseError as exc:
            self._malformed(data, exc, addr, reply)
            return
        self._dispatch(msg, reply, addr)

    def _malformed(self, data: bytes, exc: Exception, addr: Addr, reply: Reply | None) -> None:
        self.stats["malformed"] += 1
        self.ratelog.warning("malformed", "GB28181: malformed SIP from %s:%s (%s)", addr[0], addr[1], exc)
        # answer 400 when the request line and the headers a response needs are readable
        try:
            head = data.partition(b"\r\n\r\n")[0]
            lines = head.decode("utf-8", "replace").split("\r\n")
            req = SipMessage(method=lines[0].split(" ")[0] or "X", uri="sip:x")
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    req.add(name.strip(), value.strip())
            if reply is not None and not lines[0].startswith("SIP/") and all(
                    req.get(h) for h in ("Via", "From", "To", "Call-ID", "CSeq")):
                reply(response_to(req, 400, "Bad Request: " + str(exc)[:80]))
        except Exception:  # noqa: BLE001 - a reply to garbage is best effort
            pass

    def _dispatch(self, msg: SipMessage, reply: Reply, addr: Addr) -> None:
        if not msg.is_request:
            try:
                number, method = msg.cseq
            except SipParseError:
                return
            fut = self._pending.get((msg.call_id, number, method))
            if fut is not None and not fut.done() and (msg.status or 0) >= 200:
                fut.set_result(msg)
            return
        number, method = msg.cseq
        key = (msg.call_id, number, method)
        now = time.monotonic()
        if len(self._answered) > 2000:
            self._answered = {k: v for k, v in self._answered.items() if now - v[0] < 32}
        cached = self._answered.get(key)
        if cached is not None and now - cached[0] < 32 and method != "ACK":
            reply_raw = cached[1]
            reply(parse_datagram(reply_raw))  # a retransmission: the same answer again
            return
        if key in self._in_progress and method != "ACK":
            return  # a retransmission while the first is still being handled (an INVITE starting its stream)
        self._in_progress.add(key)

        def remembering_reply(resp: SipMessage) -> None:
            if (resp.status or 0) >= 200:
                self._answered[key] = (time.monotonic(), resp.encode())
            reply(resp)

        self._spawn(self._handle(msg, remembering_reply, addr, key))

    async def _handle(self, msg: SipMessage, reply: Reply, addr: Addr, key: tuple[str, int, str]) -> None:
        try:
            await self.handler(msg, reply, addr)
        except Exception:  # noqa: BLE001 - one bad request never stops the SIP loop
            log.exception("GB28181: handling %s from %s:%s failed", msg.summary(), addr[0], addr[1])
            with contextlib.suppress(Exception):
                if msg.method != "ACK":
                    reply(response_to(msg, 500))
        finally:
            self._in_progress.discard(key)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        await self._read_stream(reader, writer, (str(peer[0]), int(peer[1])))

    async def _read_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, addr: Addr) -> None:
        self._writers.add(writer)

        def reply(resp: SipMessage) -> None:
            if not writer.is_closing():
                writer.write(resp.encode())

        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    self._malformed(b"", SipParseError("SIP head too long"), addr, None)
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                head = head.lstrip(b"\r\n")
                if not head.strip():
                    continue
                try:
                    msg = parse_head(head[:-4])
                    n = content_length(msg)
                    if n is None:
                        raise SipParseError("no Content-Length on TCP")
                except BodyTooLarge:
                    self.stats["oversized"] += 1
                    self.ratelog.warning("oversized", "GB28181: a message from %s:%s with a body over %d bytes; "
                                         "answered 413 and closed the connection", addr[0], addr[1], MAX_BODY)
                    with contextlib.suppress(SipParseError):
                        bad = parse_head(head[:-4])
                        if bad.is_request:
                            reply(response_to(bad, 413))
                            await writer.drain()
                    return
                except SipParseError as exc:
                    self._malformed(head, exc, addr, reply)
                    return  # the stream cannot be resynchronised
                try:
                    msg.body = await reader.readexactly(n) if n else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self._dispatch(msg, reply, addr)
        finally:
            self._writers.discard(writer)
            writer.close()
            if writer is self._up_writer:
                self._up_writer = None
