"""Sensitive periods in Chromium against a real broker and hub: an admin raises the level from the console
(a bad window gets the hub's sentence, nothing is listed), every console shows the banner in Chinese and in
English, and the banner goes when the period is cancelled and when a period reaches its end by itself."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.protocol import utcnow
from hub.transport.broker import Broker
from tests.conftest import ADMIN, ensure_user
from tests.web.test_browser import OPERATOR, launched_chromium, login

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def browser():
    yield from launched_chromium()


def _local(delta: timedelta) -> str:
    return (utcnow() + delta).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")


def test_the_banner_in_both_languages_from_the_admin_screen_to_the_end(broker: Broker, hub_factory, browser) -> None:
    hub = hub_factory(broker.url, sensitive_tick_s="0.5")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: d.accept())
    login(page, hub.url, *ADMIN)
    if page.evaluate("pingan.lang") != "zh":
        page.click("header .lang")
    assert page.is_hidden("#sensitive-banner")
    page.click("#tab-btn-sensitive")
    assert page.inner_text("#tab-btn-sensitive") == "敏感时期"

    # a bad window: the hub's sentence, in Chinese too; nothing stored
    page.fill("#sp-form [name=start]", _local(timedelta(hours=5)))
    page.fill("#sp-form [name=end]", _local(timedelta(hours=2)))
    page.fill("#sp-form [name=reason]", "国庆安保")
    page.click("#sp-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('sp-msg').textContent.includes('必须晚于开始时间')")
    assert hub.get("/api/sensitive-periods") == []

    page.fill("#sp-form [name=start]", "")
    page.fill("#sp-form [name=end]", _local(timedelta(days=1)))
    page.fill("#sp-form [name=loiter]", "20")
    page.click("#sp-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('sp-msg').textContent === '已设置'")
    page.wait_for_selector("#sensitive-banner:not([hidden])")
    banner = page.inner_text("#sensitive-banner")
    assert "敏感时期：" in banner and "全辖区" in banner and "国庆安保" in banner and "30 秒" in banner
    page.wait_for_function("() => document.querySelector('#sp-list .sp-state')?.textContent === '生效中'")

    # another console (an operator) loads the banner with the page
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    other = browser.new_page(viewport={"width": 1366, "height": 768})
    login(other, hub.url, *OPERATOR)
    other.wait_for_selector("#sensitive-banner:not([hidden])")
    assert other.is_hidden("#tab-btn-sensitive")  # creating and cancelling is for admins

    page.click("header .lang")
    banner = page.inner_text("#sensitive-banner")
    assert "Sensitive period:" in banner and "whole district" in banner and "escalate after 30 s" in banner
    assert page.inner_text("#tab-btn-sensitive") == "Sensitive periods"

    page.click("#sp-list button[data-cancel]")  # cancelled: the banner goes on every console
    page.wait_for_selector("#sensitive-banner", state="hidden")
    other.wait_for_selector("#sensitive-banner", state="hidden")
    page.wait_for_function("() => document.querySelector('#sp-list .sp-state')?.textContent === 'cancelled'")

    # a period that reaches its end by itself
    end = (utcnow() + timedelta(seconds=12)).isoformat()
    r = hub.post("/api/sensitive-periods", {"end": end, "reason": "short drill", "grids": None})
    assert r.status_code == 201, r.text
    other.wait_for_selector("#sensitive-banner:not([hidden])")
    assert "short drill" in other.inner_text("#sensitive-banner")
    other.wait_for_selector("#sensitive-banner", state="hidden", timeout=40000)
    assert hub.get(f"/api/sensitive-periods/{r.json()['id']}")["state"] == "ended"
    assert not errors, errors
