"""The printable patrol sticker: a QR code (segno) of the check-in URL, with the pole's name on it.

The URL carries the token in its fragment (``/static/patrol.html#t=...``): a browser never sends the
fragment to a server, so the token stays out of access logs and proxies; the page posts it itself."""

from __future__ import annotations

import io
from html import escape
from pathlib import Path

import segno


def checkin_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/static/patrol.html#t={token}"


def sticker_svg(url: str, node: str, place: str, grid: str, key_id: str) -> str:
    """An SVG sticker (about 6 x 8 cm printed at 10 px/mm): title, QR, pole, place and grid, in both languages."""
    qr = segno.make(url, error="q")  # quartile: a scuffed sticker still scans
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=10, border=4, xmldecl=False, dark="#000", light="#fff")
    inner = buf.getvalue().decode()
    size = qr.symbol_size(scale=10, border=4)[0]
    width, top = max(size, 600), 110
    x = (width - size) // 2
    inner = inner.replace("<svg ", f'<svg x="{x}" y="{top}" ', 1)
    text = ('font-family="Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif" text-anchor="middle" '
            'fill="#000"')
    mid = width // 2
    lines = [
        f'<text x="{mid}" y="50" font-size="40" font-weight="bold" {text}>平安巡逻签到</text>',
        f'<text x="{mid}" y="90" font-size="24" {text}>用手机扫码签到 · Patrol check-in: scan</text>',
        f'<text x="{mid}" y="{top + size + 45}" font-size="36" font-weight="bold" {text}>{escape(node)}</text>',
        f'<text x="{mid}" y="{top + size + 90}" font-size="28" {text}>{escape(place or "-")}'
        f'{" · 网格 " + escape(grid) if grid else ""}</text>',
        f'<text x="{mid}" y="{top + size + 125}" font-size="18" fill="#555" text-anchor="middle" '
        f'font-family="sans-serif">key {escape(key_id)}</text>',
    ]
    height = top + size + 145
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            f'<rect width="{width}" height="{height}" fill="#fff" stroke="#000" stroke-width="4"/>'
            + inner + "".join(lines) + "</svg>\n")


def sticker_png(url: str, path: Path) -> None:
    """The QR alone as PNG (no text: segno writes PNG without an imaging library); the SVG has the labels."""
    segno.make(url, error="q").save(str(path), kind="png", scale=12, border=4)
