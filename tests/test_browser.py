"""The console in a real browser (Playwright + Debian's Chromium) against a real broker, hub and node:
log in, see a pressed alarm arrive live with its picture, acknowledge it (the pole's LED shows help is
coming), dispatch and resolve it, see the map and the report, and survive a hub restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
OPERATOR = ("wang", "operator-pass-1")


def launched_chromium(extra_args: tuple[str, ...] = ()):
    """Debian's Chromium through Playwright, closed afterwards; a clear skip where there is none."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else None,
                               args=[*CHROMIUM_ARGS, *extra_args])
    except Exception as exc:  # noqa: BLE001 - no browser here: say why and how to get one
        pw.stop()
        pytest.skip(f"no browser could be launched ({str(exc).splitlines()[0]}); apt-get install -y chromium")
    yield b
    b.close()
    pw.stop()


@pytest.fixture()
def browser():
    yield from launched_chromium()


def login(page, url: str, user: str, password: str) -> None:
    page.goto(url + "/")
    page.fill("#login-user", user)
    page.fill("#login-pass", password)
    page.click("#login-submit")
    page.wait_for_selector("#app-view", state="visible")
    page.wait_for_function("() => document.getElementById('conn').className === ''")  # live connection up


def test_console_works_an_alarm_end_to_end(broker: Broker, hub_factory, node_factory, browser,
                                           tmp_path: Path) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-07", broker.url, hub.register("pole-07"))
    hub.wait_online("pole-07")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text)  # the CSP (hub/app.py) blocked something
            if m.type == "error" and "Content Security Policy" in m.text else None)

    page.goto(hub.url + "/")
    page.fill("#login-user", OPERATOR[0])
    page.fill("#login-pass", "wrong-password")
    page.click("#login-submit")
    page.wait_for_function("() => document.getElementById('login-error').textContent.length > 0")
    assert "密码" in page.text_content("#login-error")  # Simplified Chinese by default
    login(page, hub.url, *OPERATOR)
    assert page.is_visible("#sound-bar")  # the page asks for the one click sound needs
    page.click("#sound-on")
    assert not page.is_visible("#sound-bar")

    node.control(cmd="press")
    card = page.wait_for_selector('.alarm[data-kind="alarm.pressed"]', timeout=20000)
    assert "s-open" in card.get_attribute("class")  # flashing until acknowledged
    assert "一键报警" in card.text_content() and "pole-07" in card.text_content() and "G01" in card.text_content()
    page.wait_for_function("""() => { const i = document.querySelector('.alarm[data-kind="alarm.pressed"] img');
        return i && i.complete && i.naturalWidth > 0; }""", timeout=20000)  # its snapshot
    page.screenshot(path=str(tmp_path / "console-alarm.png"))

    card.query_selector('[data-act="ack"]').click()
    page.wait_for_selector('.alarm[data-state="acknowledged"]')
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "help_coming", message="LED shows help coming")
    alarm = hub.get("/api/alarms")[0]
    assert alarm["acked_by"] == "wang"

    card = page.wait_for_selector('.alarm[data-state="acknowledged"]')
    card.query_selector('[data-f="to"]').fill("G01 巡逻队")
    card.query_selector('[data-act="dispatch"]').click()
    card = page.wait_for_selector('.alarm[data-state="dispatched"]')
    assert "G01 巡逻队" in card.text_content()
    card.query_selector('[data-f="outcome"]').select_option("assisted")
    card.query_selector('[data-f="note"]').fill("老人走失，已送回家")
    card.query_selector('[data-act="resolve"]').click()
    page.wait_for_selector("article.alarm", state="detached")
    assert page.is_visible("#no-alarms")
    resolved = hub.get("/api/alarms", state="resolved")[0]
    assert resolved["outcome"] == "assisted" and resolved["resolved_by"] == "wang"

    page.click('.tab[data-tab="map"]')
    dot = page.wait_for_selector('#map g[data-node="pole-07"]')
    assert dot.get_attribute("data-health") == "online"

    page.click('.tab[data-tab="reports"]')
    page.wait_for_selector("#report-totals")
    assert page.text_content("#report-totals .card b") == "1"
    assert page.query_selector("#report .chart svg rect") is not None
    page.screenshot(path=str(tmp_path / "console-report.png"), full_page=True)

    page.click("header .lang")
    assert page.text_content('.tab[data-tab="map"]') == "Map"

    # the hub goes away: a full-screen banner; it comes back: the page reconnects by itself
    hub.stop()
    page.wait_for_selector("#lost", state="visible", timeout=15000)
    hub.start()
    page.wait_for_selector("#lost", state="hidden", timeout=30000)
    page.click('.tab[data-tab="alarms"]')
    node.control(cmd="press")
    page.wait_for_selector('.alarm[data-kind="alarm.pressed"]', timeout=20000)
    page.screenshot(path=str(tmp_path / "console-after-restart.png"))
    assert not errors, errors
    assert (tmp_path / "console-alarm.png").stat().st_size > 10_000


def test_a_street_gone_silent_is_one_outage_card_until_its_nodes_return(broker: Broker, hub_factory, browser) -> None:
    """design.md: many nodes going offline at once is one incident, not thousands. Three nodes (the minimum
    here) stop talking together: the console shows one card naming them, and it goes when they are back."""
    from edge.protocol import NodeStatus, Topics
    from tests.mqtt_client import close, mqtt_connect

    hub = hub_factory(broker.url, offline_after_s="5", outage_min_nodes="3")
    street = ["door-31", "door-32", "door-33"]

    def say(state: str) -> None:
        client, rc = mqtt_connect(broker.port)
        assert rc == 0
        for node in street:
            client.publish(Topics.status(node), NodeStatus(state=state, kind="rental_door").to_bytes(),
                           qos=1).wait_for_publish(5)
        close(client)

    say("online")
    for node in street:
        hub.wait_online(node)
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text)  # the CSP (hub/app.py) blocked something
            if m.type == "error" and "Content Security Policy" in m.text else None)
    login(page, hub.url, *OPERATOR)

    card = page.wait_for_selector('.alarm[data-kind="nodes.offline"]', timeout=30000)  # after 5 s of silence
    text = card.text_content()
    assert "多台设备同时离线" in text and "3 台设备" in text and all(n in text for n in street)
    assert len(page.query_selector_all("article.alarm")) == 1  # one card, not three
    say("online")
    page.wait_for_selector("article.alarm", state="detached", timeout=20000)
    resolved = hub.get("/api/alarms", state="resolved")
    assert [(a["kind"], a["outcome"], a["nodes_back"]) for a in resolved] == [("nodes.offline", "recovered", 3)]
    assert not errors, errors
