"""The console's broker warning (hub/web/brokerlimit.js) in Chromium: a real mosquitto allowed fewer open files
than the fleet needs puts a red badge in the header, with the numbers and the fix, in both languages."""

from __future__ import annotations

from pathlib import Path

from hub.transport.broker import Broker
from tests.conftest import ensure_user
from tests.web.test_browser import browser, login  # noqa: F401 - the fixture

OPERATOR = ("zhao", "operator-pass-7")


def test_the_header_warns_when_the_broker_may_not_hold_every_node(tmp_path: Path, mosquitto_exe, hub_factory,
                                                                  browser) -> None:  # noqa: F811
    with Broker(tmp_path / "broker", kind="mosquitto", open_files=40) as broker:
        hub = hub_factory(broker.url, broker_dir=str(broker.data_dir))
        for i in range(3):
            hub.register(f"pole-{i}")
        ensure_user(hub.data_dir, *OPERATOR, "operator")
        page = browser.new_page()
        login(page, hub.url, *OPERATOR)
        page.wait_for_selector("#broker-badge:not([hidden])", timeout=20000)
        assert page.text_content("#broker-badge") == ("代理服务器文件数上限不足：40 < 103（3 个节点），"
                                                      "超出的节点无法连接")
        assert "LimitNOFILE" in (page.get_attribute("#broker-badge", "title") or "")
        page.click("header .lang")
        assert page.text_content("#broker-badge") == ("Broker file limit too low: 40 < 103 (3 nodes); "
                                                      "nodes past it cannot connect")
