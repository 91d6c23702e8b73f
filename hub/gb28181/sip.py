"""SIP messages (RFC 3261): parse and build requests and responses, strictly and small.

There is no well-kept SIP library for Python asyncio (pysip/aiosip are abandoned, PJSUA2 is a C++
binding built by hand), and GB/T 28181 uses a narrow slice of SIP, so this is written here: a start
line, headers (compact forms understood), Content-Length and a body. Anything that does not parse is
:class:`SipParseError` (the caller answers 400 or drops it); a body over :data:`MAX_BODY` is
:class:`BodyTooLarge` (413 on TCP, dropped on UDP).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

from hub.errors import HubError

MAX_HEAD = 16 * 1024   # start line + headers
MAX_BODY = 32 * 1024   # a MANSCDP query or an SDP offer is a few KiB (and a UDP datagram holds 64 KiB at most)
VERSION = "SIP/2.0"
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "e": "content-encoding", "s": "subject", "k": "supported", "o": "event"}
CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate", "x-gb-ver": "X-GB-Ver"}
METHOD = re.compile(r"^[A-Z]{2,16}$")
TOKEN_PARAM = re.compile(r";\s*([A-Za-z0-9_.!%*+`'~-]+)(?:=(\"[^\"]*\"|[^;,\s]*))?")
REASONS = {100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 489: "Bad Event", 500: "Server Internal Error", 501: "Not Implemented",
           503: "Service Unavailable", 504: "Server Time-out"}


class SipParseError(HubError, ValueError):
    """Input that is not a SIP message we accept."""


class BodyTooLarge(SipParseError):
    """Content-Length past MAX_BODY."""


def canonical(name: str) -> str:
    low = name.lower()
    low = COMPACT.get(low, low)
    return CANONICAL.get(low) or "-".join(p.capitalize() for p in low.split("-"))


@dataclass
class SipMessage:
    """A request (``method`` and ``uri`` set) or a response (``status`` set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        want = canonical(name)
        return next((v for k, v in self.headers if k == want), default)

    def get_all(self, name: str) -> list[str]:
        want = canonical(name)
        return [v for k, v in self.headers if k == want]

    def set(self, name: str, value: str) -> None:
        want = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if k != want] + [(want, value)]

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical(name), value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("CSeq") or "").split()
        if len(raw) != 2 or not raw[0].isdigit():
            raise SipParseError("bad CSeq header")
        return int(raw[0]), raw[1].upper()

    def encode(self) -> bytes:
        start = (f"{self.method} {self.uri} {VERSION}" if self.is_request
                 else f"{VERSION} {self.status} {self.reason or REASONS.get(self.status or 0, 'Unknown')}")
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def summary(self) -> str:
        return f"{self.method} {self.uri}" if self.is_request else f"{self.status} {self.reason}"


def parse_head(head: bytes) -> SipMessage:
    """Start line and headers (no body); ``head`` ends before the blank line."""
    if len(head) > MAX_HEAD:
        raise SipParseError("SIP head too long")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("SIP head is not UTF-8") from None
    lines = text.split("\r\n")
    start = lines[0]
    msg = SipMessage()
    if start.startswith(VERSION + " "):
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise SipParseError("bad status line")
        msg.status, msg.reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != VERSION or not METHOD.fullmatch(parts[0]) or ":" not in parts[1]:
            raise SipParseError("bad request line")
        msg.method, msg.uri = parts[0], parts[1]
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise SipParseError("bad header line")
        msg.headers.append((canonical(name.strip()), value.strip()))
    for need in ("Via", "From", "To", "Call-ID", "CSeq"):
        if msg.get(need) is None:
            raise SipParseError(f"missing {need} header")
    msg.cseq  # noqa: B018 - validates
    return msg


def content_length(msg: SipMessage) -> int | None:
    raw = msg.get("Content-Length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise SipParseError("bad Content-Length")
    n = int(raw)
    if n > MAX_BODY:
        raise BodyTooLarge(f"body of {n} bytes is over {MAX_BODY}")
    return n


def parse_datagram(data: bytes) -> SipMessage:
    """One UDP datagram: head, blank line, body (Content-Length may be absent: the rest of the datagram)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no blank line after the headers")
    msg = parse_head(head)
    n = content_length(msg)
    if len(body) > MAX_BODY:
        raise BodyTooLarge(f"body of {len(body)} bytes is over {MAX_BODY}")
    if n is not None:
        if n > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:n]
    msg.body = body
    return msg


def params(value: str) -> dict[str, str]:
    """``;name=value`` parameters of a header value (quotes removed, names lowercased)."""
    return {m.group(1).lower(): (m.group(2) or "").strip('"') for m in TOKEN_PARAM.finditer(value)}


def tag_of(value: str | None) -> str | None:
    if not value:
        return None
    addr_end = value.rfind(">")
    return params(value[addr_end + 1:] if addr_end >= 0 else value).get("tag")


def user_of(value: str | None) -> str | None:
    """The user part of the first SIP URI in a header or a URI: sip:<user>@host."""
    m = re.search(r"sips?:([^@;>\s]+)@", value or "")
    return m.group(1) if m else None


def uri_of(value: str | None) -> str | None:
    """The URI of a name-addr (``"name" <sip:u@h>;tag=x``) or of a bare addr-spec (``sip:u@h;tag=x``)."""
    value = (value or "").strip()
    if "<" in value and ">" in value:
        return value[value.find("<") + 1:value.find(">")] or None
    return value.split(";")[0] or None


def remote_target(req: SipMessage) -> str | None:
    """Where a request in the dialog this request opens goes back to: its Contact, else its From."""
    return uri_of(req.get("Contact")) or uri_of(req.get("From"))


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def response_to(req: SipMessage, status: int, reason: str = "", *, to_tag: str | None = None) -> SipMessage:
    """A response with the request's Via, From, To (tag added), Call-ID and CSeq (RFC 3261 8.2.6)."""
    resp = SipMessage(status=status, reason=reason or REASONS.get(status, ""))
    for v in req.get_all("Via"):
        resp.add("Via", v)
    resp.add("From", req.get("From") or "")
    to = req.get("To") or ""
    if status > 100 and tag_of(to) is None:
        to += f";tag={to_tag or new_tag()}"
    resp.add("To", to)
    resp.add("Call-ID", req.call_id)
    resp.add("CSeq", req.get("CSeq") or "")
    resp.add("User-Agent", "Pingan hub")
    return resp


@dataclass(frozen=True)
class Upstream:
    server_id: str
    host: str
    port: int
    transport: Literal["udp", "tcp"]

    @property
    def domain(self) -> str:
        return self.server_id[:10]

    @property
    def uri(self) -> str:
        return f"sip:{self.server_id}@{self.host}:{self.port}"


UPSTREAM = re.compile(r"^sip:(?P<id>[0-9]{20})@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})"
                      r"(?:;transport=(?P<transport>udp|tcp|UDP|TCP))?$")


def parse_upstream(value: str) -> Upstream:
    m = UPSTREAM.fullmatch(value.strip())
    if not m or not 1 <= int(m.group("port")) <= 65535:
        raise ValueError("must look like sip:<20-digit server ID>@<host>:<port>;transport=udp (or tcp), "
                         "e.g. sip:35020000002000000001@10.1.2.3:5060;transport=udp")
    return Upstream(m.group("id"), m.group("host").strip("[]"), int(m.group("port")),
                    "tcp" if (m.group("transport") or "udp").lower() == "tcp" else "udp")
