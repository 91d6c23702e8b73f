"""The console in a real browser (Playwright + Debian's Chromium) against a real broker, hub and node:
log in, see a pressed alarm arrive live with its picture, acknowledge it (the pole's LED shows help is
coming), dispatch and resolve it, see the map and the report, and survive a hub restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
OPERATOR = ("wang", "operator-pass-1")
# the two screens the issue names (a centre's laptop and its wall display): every workflow runs at both
SIZES = ({"width": 1366, "height": 768}, {"width": 1920, "height": 1080})

COVERED = """() => {
  const bad = [];
  const scope = [document.querySelector('header'), document.querySelector('.tab-body:not([hidden])')];
  for (const root of scope) for (const el of root.querySelectorAll('button, select, input, textarea, a[href]')) {
    if (!el.offsetParent || !el.checkVisibility()) continue;  // e.g. inside a closed <details>
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;  // scrolled out of view: nothing on it
    const top = document.elementFromPoint(x, y);
    if (top && !el.contains(top) && !top.contains(el)) {
      bad.push(el.outerHTML.slice(0, 70) + ' under ' + top.outerHTML.slice(0, 70));
    }
  }
  return bad; }"""


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
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "seen", message="LED shows the alarm is seen")
    alarm = hub.get("/api/alarms")[0]
    assert alarm["acked_by"] == "wang"

    card = page.wait_for_selector('.alarm[data-state="acknowledged"]')
    card.query_selector('[data-f="to"]').fill("G01 巡逻队")
    card.query_selector('[data-act="dispatch"]').click()
    card = page.wait_for_selector('.alarm[data-state="dispatched"]')
    assert "G01 巡逻队" in card.text_content()
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "help_coming", message="LED shows help coming")
    card.query_selector('[data-f="outcome"]').select_option("assisted")
    card.query_selector('[data-f="note"]').fill("老人走失，已送回家")
    card.query_selector('[data-act="resolve"]').click()
    page.wait_for_selector("article.alarm", state="detached")
    assert page.is_visible("#no-alarms")
    resolved = hub.get("/api/alarms", state="resolved")[0]
    assert resolved["outcome"] == "assisted" and resolved["resolved_by"] == "wang"

    page.click('.tab[data-tab="map"]')
    dot = page.wait_for_selector('#tab-map [data-node="pole-07"]')  # no coordinates: listed beside the map
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


# --- issue 17: the queue, resolving, English, snapshots and the live panel (state seeded in the hub's store) ---
def seed(hub, nodes: dict[str, str | dict] | None = None, alarms: list[dict] | None = None,
         escalated: tuple[int, ...] = ()) -> list[str]:
    """Nodes (id → state, or → columns) and alarms straight into a running hub's database, as its ingest would
    leave them."""
    import uuid
    from datetime import timedelta

    from hub.store.engine import make_engine
    from hub.store.schema import alarms as alarms_t
    from hub.store.schema import escalations
    from hub.store.schema import nodes as nodes_t

    now = datetime.now(UTC)
    engine = make_engine(f"sqlite:///{(hub.data_dir / 'hub.db').resolve()}")
    ids = []
    try:
        with engine.begin() as conn:
            for i, (node, spec) in enumerate((nodes or {}).items()):
                values = {"id": node, "kind": "rental_door" if node.startswith("door") else "alarm_post",
                          "place": f"{node} 路口", "grid": "G01", "lat": 24.48 + i * 0.001, "lon": 118.11 + i * 0.001,
                          "created": now, "last_seen": now}
                values.update({"state": spec} if isinstance(spec, str) else spec)
                conn.execute(nodes_t.insert().values(**values))
            for a in alarms or []:
                aid = str(uuid.uuid4())
                raised = now - timedelta(seconds=a.pop("age", 0))
                conn.execute(alarms_t.insert().values(**{"id": aid, "state": "open", "count": 1, "node_ts": raised,
                                                         "raised_at": raised, **a}))
                ids.append(aid)
            for i in escalated:
                conn.execute(escalations.insert().values(alarm_id=ids[i], escalated_at=now))
    finally:
        engine.dispose()
    return ids


def watch_errors(page) -> list[str]:
    """Script errors, CSP refusals and every failed request (a snapshot's 404 was one) the page meets."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text)  # /api/me's 401 before the login is expected
            if m.type == "error" and "status of 401" not in m.text else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not (r.status == 401 and r.url.endswith("/api/me")) else None)
    return errors


def test_queue_order_resolve_outcome_skipped_stages_and_both_languages(broker: Broker, hub_factory, browser) -> None:
    hub = hub_factory(broker.url, offline_after_s="3600")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    acked, loiter, tamper, door, press = seed(
        hub, {"pole-01": "online", "pole-02": "offline", "door-01": "online"}, [
            {"node": "pole-01", "kind": "alarm.pressed", "state": "acknowledged", "age": 300,
             "acked_by": "li", "acked_at": datetime(2026, 1, 1, tzinfo=UTC)},
            {"node": "pole-01", "kind": "detection.loitering", "age": 200},
            {"node": "pole-02", "kind": "tamper.opened", "age": 20},
            {"node": "door-01", "kind": "door.forced", "age": 10},
            {"node": "pole-02", "kind": "alarm.pressed", "age": 5}], escalated=(1,))
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors = watch_errors(page)
    login(page, hub.url, *OPERATOR)
    page.wait_for_selector(f'article.alarm[data-id="{acked}"]')
    # unacknowledged first, the escalated one first among them, then the loudest, then the oldest
    order = page.eval_on_selector_all("article.alarm", "els => els.map((e) => e.dataset.id)")
    assert order == [loiter, press, door, tamper, acked]
    for size in SIZES:  # read as the eye reads (row by row, left to right), at both sizes; no button covered
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
        seen = page.eval_on_selector_all("article.alarm", """els => els
            .map((e) => [e.getBoundingClientRect(), e.dataset.id])
            .sort(([a], [b]) => (Math.round(a.top) - Math.round(b.top)) || (a.left - b.left)).map(([, id]) => id)""")
        assert seen == order, size
        assert page.evaluate(COVERED) == [], size
    page.set_viewport_size(SIZES[0])
    # an offline node offers no live view; one online does
    assert not page.is_visible(f'article[data-id="{press}"] [data-act="live"]')
    assert not page.is_visible(f'article[data-id="{tamper}"] [data-act="live"]')
    assert page.is_visible(f'article[data-id="{loiter}"] [data-act="live"]')
    # resolving asks for the outcome: no default, nothing sent until one is chosen
    card = page.query_selector(f'article[data-id="{press}"]')
    assert card.eval_on_selector('[data-f="outcome"]', "s => s.value") == ""
    card.query_selector('[data-act="resolve"]').click()
    assert "结案前请选择处置结果" in card.text_content()
    assert hub.get(f"/api/alarms/{press}")["state"] == "open"
    card.query_selector('[data-f="outcome"]').select_option("false_alarm")
    card.query_selector('[data-act="resolve"]').click()
    page.wait_for_selector(f'article[data-id="{press}"]', state="detached")
    done = hub.get(f"/api/alarms/{press}")
    assert done["outcome"] == "false_alarm" and done["acked_at"] is None  # skipped, not stamped
    # dispatching straight away shows the acknowledgement as skipped
    page.query_selector(f'article[data-id="{tamper}"] [data-act="dispatch"]').click()
    skipped = page.wait_for_selector(f'article[data-id="{tamper}"][data-state="dispatched"] li.skipped')
    assert "已确认" in skipped.text_content() and "跳过" in skipped.text_content()
    # the favicon is there
    assert page.eval_on_selector('link[rel="icon"]', "l => fetch(l.href).then((r) => r.status)") == 200
    # reports in Chinese: every header translated ("down" was not)
    page.click('.tab[data-tab="reports"]')
    page.wait_for_selector("#report-totals")
    assert "离线时长" in page.text_content("#report") and "down" not in page.text_content("#report")
    # English: outcomes, the live status and dates in the order the inputs take them
    page.evaluate("pingan.lvStatus('lv_playing')")
    page.click("header .lang")
    assert page.text_content("#live-status") == "live"  # it stayed 直播中
    page.click('.tab[data-tab="alarms"]')
    options = page.eval_on_selector_all(f'article[data-id="{loiter}"] [data-f="outcome"] option',
                                        "os => os.map((o) => o.textContent)")
    assert options == ["Choose the outcome…", "Assisted", "False alarm", "Crime or disorder", "Other"]
    page.click('.tab[data-tab="reports"]')
    assert page.get_attribute("#report-from", "placeholder") == "YYYY-MM-DD"
    page.fill("#report-from", "2026-03-02")
    page.fill("#report-to", "2026-03-03")
    page.click('#report-form button[type="submit"]')
    page.wait_for_function("() => document.querySelector('#report p').textContent.startsWith('2026-03-02 ')")
    assert "Downtime" in page.text_content("#report")
    assert not errors, errors  # no snapshot asked for that is not there (door cards 404'd), no favicon 404


def test_the_live_panel_covers_nothing_opens_once_and_follows_the_newest_press(broker: Broker, hub_factory,
                                                                                browser) -> None:
    hub = hub_factory(broker.url, offline_after_s="3600")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    first, *_ = seed(hub, {"pole-01": "online", "pole-02": "online", "pole-03": "online"},
                     [{"node": "pole-01", "kind": "alarm.pressed", "age": 30}]
                     + [{"node": "pole-02", "kind": "tamper.opened", "age": 40 + i} for i in range(7)])
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    login(page, hub.url, *OPERATOR)
    page.wait_for_selector("#live-panel", state="visible")  # the press shows its scene by itself
    assert page.text_content("#live-node") == "pole-01"
    for size in (*SIZES, {"width": 1600, "height": 1000}):
        page.set_viewport_size(size)
        for tab in ("alarms", "map"):
            page.click(f'.tab[data-tab="{tab}"]')
            covered = page.evaluate("""() => {
                const p = document.getElementById('live-panel').getBoundingClientRect();
                const sel = '#tab-alarms:not([hidden]) button, #tab-alarms:not([hidden]) select, '
                    + '#tab-alarms:not([hidden]) input, #tab-map:not([hidden]) #map';
                return [...document.querySelectorAll(sel)].filter((b) => b.offsetParent).map((b) => {
                    const r = b.getBoundingClientRect();
                    return [r.right > p.left && r.left < p.right, b.outerHTML.slice(0, 60)]; })
                  .filter(([hit]) => hit).map(([, what]) => what); }""")
            assert covered == [], (size, tab, covered)
    page.click('.tab[data-tab="alarms"]')
    # a newer press replaces the older pole being watched
    seed(hub, alarms=[{"node": "pole-03", "kind": "alarm.pressed", "age": 1}])
    page.evaluate("pingan.loadAlarms()")
    page.wait_for_function("() => document.getElementById('live-node').textContent === 'pole-03'")
    # closed, it stays closed when the page is loaded again
    page.click("#live-close")
    page.reload()
    page.wait_for_selector(f'article.alarm[data-id="{first}"] [data-act="live"]')
    page.wait_for_timeout(500)
    assert not page.is_visible("#live-panel")


def test_the_map_lists_unplaced_doors_beside_it_colours_every_alarm_and_opens_a_node(
        broker: Broker, hub_factory, browser) -> None:
    """The map (Leaflet, vendored): nodes at their coordinates, clustered when close, every alarm kind
    coloured (a cluster takes its worst member's colour), nodes without coordinates listed beside it, a
    click on a node opens its page."""
    hub = hub_factory(broker.url, offline_after_s="3600")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    spots = {}
    for g in range(8):  # eight grids of poles, close together (labels would sit on each other)
        for i in range(4):
            spots[f"pole-{g}{i}"] = {"state": "online", "grid": f"G0{g}", "lat": 24.48 + g * 0.002 + i * 0.0002,
                                     "lon": 118.11 + i * 0.0002 + g * 0.001}
    spots |= {"door-held": {"state": "online", "lat": 24.481, "lon": 118.111},
              "door-locked": {"state": "online", "lat": 24.483, "lon": 118.112}}
    spots |= {f"door-{i:02}": {"state": "online", "lat": None, "lon": None} for i in range(12)}  # no coordinates
    seed(hub, spots, [{"node": "door-held", "kind": "door.held_open", "age": 5},
                      {"node": "door-locked", "kind": "door.lockout", "age": 5},
                      {"node": "door-03", "kind": "door.held_open", "age": 5}])
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors = watch_errors(page)
    login(page, hub.url, *OPERATOR)
    page.click('.tab[data-tab="map"]')
    page.wait_for_selector("#map .leaflet-marker-icon")
    # doors without coordinates are listed beside the map, not drawn on it
    assert page.query_selector('#map [data-node^="door-0"]') is None
    listed = page.eval_on_selector_all("#map-unplaced li", "ls => ls.map((l) => l.dataset.node)")
    assert listed == [f"door-{i:02}" for i in range(12)]
    assert "未标位置" in page.text_content("#map-unplaced")
    list_box, map_box = page.locator("#map-unplaced").bounding_box(), page.locator("#map").bounding_box()
    assert list_box["x"] >= map_box["x"] + map_box["width"]
    assert page.get_attribute('#map-unplaced li[data-node="door-03"]', "data-health") == "alarm"
    # zoomed out, 34 nodes are a few clusters, and a cluster holding a door held open is red
    # without animation: Leaflet drops a view change asked for while a zoom animation still runs
    page.evaluate("pingan.map.setZoom(12, {animate: false})")
    page.wait_for_selector('#map .cluster [data-health="alarm"]')
    assert page.query_selector('#map [data-node="door-held"]') is None
    # zoomed in, a door held open or locked out is an alarm, not green
    page.wait_for_function("() => !pingan.map._animatingZoom")  # Leaflet drops setView during a zoom animation
    page.evaluate("pingan.map.setView([24.482, 118.1115], 18, {animate: false})")
    page.wait_for_function("() => pingan.map.getZoom() === 18 || (pingan.map.setView([24.482, 118.1115], 18, "
                           "{animate: false}), false)", polling=500)
    for door in ("door-held", "door-locked"):
        page.wait_for_selector(f'#map [data-node="{door}"]')
        assert page.get_attribute(f'#map [data-node="{door}"]', "data-health") == "alarm"
    # on the wall display too: the unplaced doors beside the map, the alarms coloured, no button covered
    for size in SIZES:
        page.set_viewport_size(size)
        page.wait_for_timeout(300)  # Leaflet follows the window's size
        list_box, map_box = page.locator("#map-unplaced").bounding_box(), page.locator("#map").bounding_box()
        assert list_box["x"] >= map_box["x"] + map_box["width"], size
        for door in ("door-held", "door-locked"):
            assert page.get_attribute(f'#map [data-node="{door}"]', "data-health") == "alarm", size
        assert page.evaluate(COVERED) == [], size
    page.click('#map [data-node="door-held"]')
    page.wait_for_selector('#node-title[data-node="door-held"]')
    assert page.evaluate("location.hash") == "#/nodes/door-held"
    assert page.get_attribute('#node-health [data-f="state"]', "data-health") == "alarm"
    assert not errors, errors
