"""MANSCDP bodies (GB/T 28181 Annex A): XML, encoded GB2312 as the standard says, read tolerantly.

Outgoing bodies declare ``encoding="GB2312"`` and are encoded so; a character GB2312 lacks (a rare
name) becomes an XML character reference rather than a byte GB2312 does not have. Incoming bodies
are decoded by their declaration, GB2312 read as GB18030 (its superset, which platforms actually
send), UTF-8 as a fallback; a DOCTYPE is refused (no entity tricks in a 64 KiB body).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Union
from xml.sax.saxutils import escape

from hub.errors import HubError

CONTENT_TYPE = "Application/MANSCDP+xml"
DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_-]+)[\"'][^>]*\?>", re.I)

Value = Union[str, int, float, None, "Node", list["Node"]]
Node = tuple[str, Value]


class ManscdpError(HubError, ValueError):
    """A body that is not the MANSCDP XML we read."""


def render(root: str, children: list[Node]) -> bytes:
    """``<?xml ... GB2312?><root>children</root>`` encoded GB2312 (unencodable characters as references)."""
    out = [f'<?xml version="1.0" encoding="GB2312"?>\r\n<{root}>\r\n']
    _render_children(children, out, 1)
    out.append(f"</{root}>\r\n")
    return "".join(out).encode("gb2312", errors="xmlcharrefreplace")


def _render_children(children: list[Node], out: list[str], depth: int) -> None:
    for tag, value in children:
        if value is None:
            continue
        pad = ""
        if isinstance(value, tuple):
            value = [value]
        if isinstance(value, list):
            attrs = ""
            if tag == "DeviceList" or tag == "AlarmList":
                attrs = f' Num="{sum(1 for v in value if v[0] == "Item")}"'
            out.append(f"{pad}<{tag}{attrs}>\r\n")
            _render_children(value, out, depth + 1)
            out.append(f"{pad}</{tag}>\r\n")
        else:
            text = f"{value:.6f}" if isinstance(value, float) else str(value)
            out.append(f"{pad}<{tag}>{escape(text)}</{tag}>\r\n")


def decode(body: bytes) -> str:
    m = DECL.match(body)
    declared = (m.group(1).decode().lower() if m else "gb2312")
    order = ["gb18030", "utf-8"] if declared in ("gb2312", "gbk", "gb18030") else [declared, "gb18030"]
    for enc in order:
        try:
            return body.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    raise ManscdpError("the body is neither GB18030 nor UTF-8 text")


def parse(body: bytes) -> ET.Element:
    text = decode(body)
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ManscdpError("DOCTYPE and entities are not accepted")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManscdpError(f"not well-formed XML: {exc}") from None


def text_of(root: ET.Element, tag: str) -> str | None:
    el = root.find(tag)
    return el.text.strip() if el is not None and el.text is not None else None
