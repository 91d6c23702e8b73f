"""The patrol sticker in a phone's browser: real hub and broker processes, the CLI's QR decoded by OpenCV,
Chromium with a 360x640 viewport and geolocation granted; log in on the page, check in, a forged code refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ensure_user
from tests.web.test_browser import launched_chromium

PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True, "locale": "zh-CN",
         "geolocation": {"latitude": 22.5001, "longitude": 114.0001, "accuracy": 15}, "permissions": ["geolocation"]}


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_scan_log_in_and_check_in_from_a_phone(broker, hub_factory, browser, tmp_path: Path) -> None:
    import cv2

    hub = hub_factory(broker.url)
    hub.register("pole-p1")
    ensure_user(hub.data_dir, "li", "li-password-1", "operator")
    png = tmp_path / "pole-p1.png"
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "qr", "pole-p1", "--png", str(png),
                          "--url", hub.url], env=hub.env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    url = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(png)))[0]
    assert url.startswith(f"{hub.url}/static/patrol.html#t=")

    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#status").inner_text() == "请先登录"
    page.fill("input[name=username]", "li")
    page.fill("input[name=password]", "li-password-1")
    page.click("#l-go")
    page.wait_for_selector("#status.ok")
    assert page.locator("#status").inner_text() == "已签到"
    assert page.locator("#pole").inner_text() == "pole-p1"
    assert "Test street" in page.locator("#place").inner_text() and "G01" in page.locator("#place").inner_text()
    # nothing overflows the phone's width
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    rows = httpx.get(f"{hub.url}/api/patrols/checkins", headers=hub.headers, timeout=10).json()
    assert [(r["node"], r["username"], r["lat"], r["lon"]) for r in rows] == [("pole-p1", "li", 22.5001, 114.0001)]

    # English, and a forged code: refused, nothing recorded
    page.click("#lang")
    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    page.goto(forged)
    page.reload()  # a new fragment alone does not reload the page
    page.wait_for_selector("#status.bad")
    assert page.locator("#status").inner_text().startswith("Check-in refused: this sticker's signature is wrong")
    assert len(httpx.get(f"{hub.url}/api/patrols/checkins", headers=hub.headers, timeout=10).json()) == 1
    ctx.close()
