"""The console's city-networking badge (hub/web/citylink.js) in Chromium: hidden without city networking,
red with the reason while the city platform does not answer, green once registered, in both languages."""

from __future__ import annotations

import socket
import threading

from hub.gb28181.sip import SipParseError, parse_datagram, response_to
from hub.transport.broker import Broker, free_port
from tests.conftest import ensure_user
from tests.web.test_browser import browser, login  # noqa: F401 - the fixture

OPERATOR = ("zhao", "operator-pass-7")
HUB_ID = "34020000002000000001"
PLATFORM = "34020000002000000002"


class Platform(threading.Thread):
    """A city platform that answers everything 200 (registration without a challenge)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.3)
        self.port = self.sock.getsockname()[1]
        self.stopped = False

    def run(self) -> None:
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(65536)
                msg = parse_datagram(data)
            except (TimeoutError, SipParseError):
                continue
            except OSError:
                return
            if msg.is_request:
                resp = response_to(msg, 200)
                resp.add("Expires", "3600")
                self.sock.sendto(resp.encode(), addr)


def gb(port: int) -> dict[str, str]:
    return {"gb_id": HUB_ID, "gb_password": "12345678", "gb_upstream": f"sip:{PLATFORM}@127.0.0.1:{port};transport=udp",
            "gb_sip_port": str(free_port()), "gb_sip_host": "127.0.0.1"}


def test_the_badge_follows_the_registration(broker: Broker, hub_factory, browser) -> None:  # noqa: F811
    platform = Platform()
    platform.start()
    try:
        hub = hub_factory(broker.url, **gb(platform.port))
        ensure_user(hub.data_dir, *OPERATOR, "operator")
        page = browser.new_page()
        login(page, hub.url, *OPERATOR)
        page.wait_for_function("() => (document.getElementById('gb-badge')?.textContent || '').includes('已注册')",
                               timeout=20000)
        assert page.get_attribute("#gb-badge", "class") == ""
        assert page.text_content("#gb-badge") == "市级联网: 已注册"
        page.click("header .lang")
        assert page.text_content("#gb-badge") == "City link: registered"
    finally:
        platform.stopped = True
        platform.join(2)
        platform.sock.close()


def test_the_badge_says_when_the_city_does_not_answer(broker: Broker, hub_factory, browser) -> None:  # noqa: F811
    silent = free_port()
    hub = hub_factory(broker.url, **gb(silent))
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page()
    login(page, hub.url, *OPERATOR)
    page.wait_for_function("() => (document.getElementById('gb-badge')?.textContent || '').includes('无响应')",
                           timeout=40000)
    assert page.get_attribute("#gb-badge", "class") == "down"
    assert "REGISTER" in (page.get_attribute("#gb-badge", "title") or "")  # the reason, for the technicians


def test_no_badge_without_city_networking(broker: Broker, hub_factory, browser) -> None:  # noqa: F811
    hub = hub_factory(broker.url)
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page()
    login(page, hub.url, *OPERATOR)
    page.wait_for_function("() => window.pingan !== undefined")
    page.wait_for_timeout(1000)  # the badge's first poll of /api/health has answered
    assert page.is_hidden("#gb-badge")
    assert page.is_hidden("#broker-badge")  # this broker may open as many files as the machine allows
