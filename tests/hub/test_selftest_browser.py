"""The self-test tab in a real browser against a real broker, hub and node: the operator asks a pole to
test itself, the result comes back through the hub, the grid counts the pole as passing and the history
shows each check, in both languages."""

from __future__ import annotations

import pytest

from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for
from tests.web.test_browser import OPERATOR, launched_chromium, login


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_test_now_from_the_console_shows_the_result_per_grid_and_per_check(
        broker: Broker, hub_factory, node_factory, browser) -> None:
    hub = hub_factory(broker.url)
    node_factory("pole-st9", broker.url, hub.register("pole-st9"), pins={"button_test_drive": 5})
    hub.wait_online("pole-st9")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, hub.url, *OPERATOR)
    if page.evaluate("pingan.lang") != "zh":
        page.click("header .lang")
    page.click("#tab-btn-selftest")
    assert page.inner_text("#tab-btn-selftest") == "自检"
    page.wait_for_selector("#st-fleet tr >> nth=1")
    assert "pole-st9" in page.inner_text("#st-fleet")  # registered, never tested: listed as untested
    page.fill("#st-node", "pole-st9")
    page.click("#st-run")
    page.wait_for_function("() => document.getElementById('st-msg').textContent === '已发送自检命令'")
    wait_for(lambda: hub.get("/api/nodes/pole-st9/selftests"), 30, message="the self-test result at the hub")
    page.click("#st-history")
    page.wait_for_selector("#st-hist table")
    text = page.inner_text("#st-hist")
    assert "button_loop" in text and "audio_loop" in text and "通过" in text and "dBFS" in text
    page.click("#tab-btn-selftest")  # reloads the fleet view
    page.wait_for_function("() => !document.getElementById('st-fleet').textContent.includes('pole-st9')")
    cells = page.locator("#st-fleet tr >> nth=1").inner_text()
    assert "1" in cells  # one pole passing in its grid
    page.click("header .lang")
    assert page.inner_text("#tab-btn-selftest") == "Self-test"
    assert "Measured" in page.inner_text("#st-hist") and "pass" in page.inner_text("#st-hist")
    bad = page.fill("#st-node", "pole-nope") or page.click("#st-run")
    page.wait_for_function("() => document.getElementById('st-msg').textContent.startsWith('Error: ')")
    assert "no node" in page.inner_text("#st-msg") and bad is None
    assert not errors, errors
