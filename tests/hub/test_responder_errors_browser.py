"""The responders' phone app shows the hub's refusals in its own language (hub/web/responder.js through
server-errors.js), in real Chromium against a real hub and broker: checking in outside any shift is refused by
the hub in English ("no shift of your team now ..."), and the phone says it in Chinese, or English when asked."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ensure_user
from tests.web.test_browser import launched_chromium

RESPONDER = ("zhou", "responder-pass-2")
PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True, "locale": "zh-CN"}


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_a_refused_check_in_is_shown_in_the_phones_language(broker, hub_factory, browser) -> None:
    hub = hub_factory(broker.url)
    ensure_user(hub.data_dir, *RESPONDER, "responder")
    r = httpx.put(f"{hub.url}/api/teams/night", json={"name": "夜巡队", "kind": "patrol", "grids": ["G01"],
                                                       "shifts": []}, headers=hub.headers, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.put(f"{hub.url}/api/responders/zhou", json={"name": "周敏", "team": "night"}, headers=hub.headers,
                  timeout=10)
    assert r.status_code == 200, r.text

    page = browser.new_context(**PHONE).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(hub.url + "/r/")
    page.fill("#login-user", RESPONDER[0])
    page.fill("#login-pass", RESPONDER[1])
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible")
    page.click("#duty-toggle")  # a team without shifts: the hub refuses (409) in English
    page.wait_for_function("() => document.getElementById('duty-error').textContent !== ''")
    assert page.text_content("#duty-error") == "操作失败: 您的队伍现在没有班次：请在班次内签到"
    page.click("#lang")
    page.click("#duty-toggle")
    page.wait_for_function("() => document.getElementById('duty-error').textContent.startsWith('Failed')")
    assert page.text_content("#duty-error") == "Failed: no shift of your team now: you can check in during a shift"
    assert not errors, errors
