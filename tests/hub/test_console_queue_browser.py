"""The alarm queue with many open alarms, in Chromium against a real hub (issue 17): the console draws the
first page of cards in the queue's order (unacknowledged first, escalated first among them, then the loudest
kind, then the oldest) and counts the rest, saying how many of those nobody has acknowledged; more are drawn
on "show more", on scrolling to the end and when the night shift's j key passes the last card, so the keys
reach the whole queue; a change to one alarm redraws its card only. At 1366×768 and 1920×1080, with no
overlay over an action button."""

from __future__ import annotations

import pytest

from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for
from tests.web.test_browser import COVERED, OPERATOR, SIZES, launched_chromium, login, seed, watch_errors

PAGE = 40  # screens/alarms.js PAGE


def move_in_store(hub, alarm_id: str, state: str) -> None:
    """Another console's step, written straight into the hub's store (no live message reaches this page)."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from hub.store.engine import make_engine
    from hub.store.schema import alarms

    engine = make_engine(f"sqlite:///{(hub.data_dir / 'hub.db').resolve()}")
    try:
        with engine.begin() as conn:
            conn.execute(update(alarms).where(alarms.c.id == alarm_id)
                         .values(state=state, on_scene_at=datetime.now(UTC)))
    finally:
        engine.dispose()


def drawn_ids(page) -> list[str]:
    return page.eval_on_selector_all("#alarms article.alarm", "els => els.map((e) => e.dataset.id)")


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_a_long_queue_draws_a_page_in_order_counts_the_rest_and_the_keys_reach_all_of_it(
        broker: Broker, hub_factory, browser) -> None:
    # escalation stays as seeded (one escalated alarm) while the test runs
    hub = hub_factory(broker.url, offline_after_s="3600", escalate_after_s="86400")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    poles = {f"pole-{i:02}": "online" for i in range(10)}
    alarms = ([{"node": f"pole-{i % 10:02}", "kind": "detection.loitering", "age": 600 + i} for i in range(50)]
              + [{"node": f"pole-{i % 10:02}", "kind": "alarm.pressed", "state": "acknowledged", "age": 900 + i,
                  "acked_by": "li"} for i in range(60)]
              + [{"node": "pole-09", "kind": "tamper.opened", "age": 30}])
    ids = seed(hub, poles, alarms, escalated=(7,))
    order = [a["id"] for a in hub.get("/api/alarms", limit=1000)]
    assert len(order) == 111 and order[0] == ids[7]  # the escalated one first (the hub's rule, checked elsewhere)
    open_ids = {a["id"] for a in hub.get("/api/alarms", limit=1000) if a["state"] == "open"}

    page = browser.new_page(viewport=SIZES[0])
    errors = watch_errors(page)
    login(page, hub.url, *OPERATOR)
    page.wait_for_function(f"() => document.querySelectorAll('#alarms article.alarm').length === {PAGE}")
    page.click("#live-close") if page.is_visible("#live-close") else None
    # the first page, in the queue's order; the rest counted, with the unacknowledged among them named
    assert drawn_ids(page) == order[:PAGE]
    waiting_below = sum(1 for i in order[PAGE:] if i in open_ids)
    assert waiting_below == 11  # 51 unacknowledged: 11 of them below the first page
    text = page.text_content("#queue-more")
    assert f"已显示 {PAGE} 条，共 111 条" in text and f"下方还有 {waiting_below} 条未确认的报警" in text, text
    assert page.text_content("#count") == "111"
    for size in SIZES:
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
        assert page.evaluate(COVERED) == [], size
    page.set_viewport_size(SIZES[0])

    # j past the last card drawn draws the next ones: the keys reach the 41st alarm, and a acknowledges it
    assert page.eval_on_selector("#alarms article.selected", "e => e.dataset.id") == order[0]  # the top one
    for _ in range(PAGE):
        page.keyboard.press("j")
    selected = page.eval_on_selector("#alarms article.selected", "e => e.dataset.id")
    assert selected == order[PAGE]
    drawn = drawn_ids(page)  # the next cards, drawn as the selection nears the end (scrolled or by the key)
    assert len(drawn) >= 2 * PAGE and drawn == order[:len(drawn)]
    # a change to one alarm redraws that card only: the others stay the same elements
    page.evaluate("document.querySelector('#alarms article.alarm').__kept = true")
    page.keyboard.press("a")
    wait_for(lambda: hub.get(f"/api/alarms/{order[PAGE]}").get("acked_by") == OPERATOR[0],
             message="the 41st alarm acknowledged by its key")
    # acknowledged, it moves down among the acknowledged: the cards drawn follow the hub's new order
    page.wait_for_function(f"""() => {{ const c = document.querySelector('article.alarm[data-id="{order[PAGE]}"]');
        return !c || c.dataset.state === 'acknowledged'; }}""")
    after = [a["id"] for a in hub.get("/api/alarms", limit=1000)]
    assert after.index(order[PAGE]) > PAGE + 10
    page.wait_for_function(f"() => JSON.stringify([...document.querySelectorAll('#alarms article.alarm')]"
                           f".map((e) => e.dataset.id)) === JSON.stringify({after!r}.slice(0, "
                           "document.querySelectorAll('#alarms article.alarm').length))")
    assert page.evaluate("document.querySelector('#alarms article.alarm').__kept === true")
    # and the unacknowledged below the cards drawn are one fewer
    page.wait_for_function("() => !document.getElementById('queue-more').textContent.includes('11 条未确认')")

    # "show more", then scrolling to the end, draw the rest; nothing is left uncounted
    n = len(drawn_ids(page))
    if n < 111:
        page.click("#queue-more button")
        page.wait_for_function(f"() => document.querySelectorAll('#alarms article.alarm').length > {n}")
    page.evaluate("document.getElementById('queue-more').scrollIntoView()")
    page.wait_for_function("() => document.querySelectorAll('#alarms article.alarm').length === 111")
    assert page.is_hidden("#queue-more")
    listed = hub.get("/api/alarms", limit=1000)
    assert drawn_ids(page) == [a["id"] for a in listed]

    # a refusal from the hub in the console's language: an acknowledged alarm was taken on scene elsewhere (in
    # the store, unseen by this page); its Dispatch is refused with the hub's English sentence, shown in Chinese
    taken = next(a["id"] for a in listed if a["state"] == "acknowledged")
    move_in_store(hub, taken, "on_scene")
    page.click(f'article.alarm[data-id="{taken}"] [data-act="dispatch"]')
    page.wait_for_selector(f'article.alarm[data-id="{taken}"][data-state="on_scene"]')
    error = page.wait_for_selector(f'article.alarm[data-id="{taken}"] .error:not(:empty)')
    assert "该报警已处于“已到场”状态" in error.text_content() and "already" not in error.text_content()

    # English: the count says the same
    page.evaluate("window.scrollTo(0, 0)")
    page.reload()
    page.wait_for_function(f"() => document.querySelectorAll('#alarms article.alarm').length === {PAGE}")
    page.click("header .lang")
    assert "Showing 40 of 111" in page.text_content("#queue-more")
    assert "Show 40 more" in page.text_content("#queue-more button")
    # expected: the refused dispatch (and the browser's line repeating it); the live view may not answer
    unexpected = [e for e in errors if "/api/live/" not in e and f"/api/alarms/{taken}/dispatch" not in e
                  and "status of 409" not in e]
    assert not unexpected, unexpected


def test_live_changes_patch_the_queue_in_the_hubs_order_without_loading_it_again(broker: Broker, hub_factory,
                                                                                 browser) -> None:
    """A new alarm, an acknowledgement, a resolution and a press joining an open alarm each fetch only the
    alarms the live message named (?ids=), and the page's queue is the hub's, in the hub's order."""
    from edge.protocol import Event, Topics
    from tests.mqtt_client import close, mqtt_connect

    hub = hub_factory(broker.url, offline_after_s="3600", escalate_after_s="86400")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    poles = {f"pole-{i:02}": "online" for i in range(6)}
    seeded = ([{"node": f"pole-{i % 6:02}", "kind": "detection.loitering", "age": 600 + i} for i in range(20)]
              + [{"node": f"pole-{i % 6:02}", "kind": "alarm.pressed", "state": "acknowledged", "age": 900 + i,
                  "acked_by": "li"} for i in range(10)])
    ids = seed(hub, poles, seeded, escalated=(3,))
    page = browser.new_page(viewport=SIZES[1])
    errors = watch_errors(page)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/alarms?" in r.url else None)
    login(page, hub.url, *OPERATOR)
    page.wait_for_function("() => document.querySelectorAll('#alarms article.alarm').length === 30")
    page.click("#live-close") if page.is_visible("#live-close") else None
    loaded = len(asked)

    def same_as_hub() -> bool:
        want = [a["id"] for a in hub.get("/api/alarms", limit=1000)]
        return page.evaluate("window.pingan.alarms.map((a) => a.id)") == want

    client, rc = mqtt_connect(broker.port)
    assert rc == 0
    try:
        pressed = Event.make("pole-04", "alarm.pressed", {"count": 1})  # new, loudest: to the top
        client.publish(Topics.events("pole-04"), pressed.to_bytes(), qos=1).wait_for_publish(5)
        page.wait_for_selector(f'article.alarm[data-id="{pressed.id}"]')
        wait_for(same_as_hub, message="the new alarm in the hub's place")
        assert hub.post(f"/api/alarms/{ids[5]}/ack", {}).status_code == 200  # down among the acknowledged
        wait_for(same_as_hub, message="the acknowledged alarm moved down")
        r = hub.post(f"/api/alarms/{ids[25]}/resolve", {"outcome": "assisted"})
        assert r.status_code == 200, r.text
        wait_for(same_as_hub, message="the resolved alarm gone")
        again = Event.make("pole-04", "alarm.repeat", {"alarm_id": str(pressed.id), "count": 2})  # on its card
        client.publish(Topics.events("pole-04"), again.to_bytes(), qos=1).wait_for_publish(5)
        page.wait_for_function(f"""() => (window.pingan.alarms.find((a) => a.id === '{pressed.id}') || {{}})
            .count === 2""")
        wait_for(same_as_hub, message="the press folded in")
    finally:
        close(client)
    patches = asked[loaded:]
    assert patches and all("ids=" in u and "limit=" not in u for u in patches), patches
    drawn = drawn_ids(page)
    assert drawn == [a["id"] for a in hub.get("/api/alarms", limit=1000)][:len(drawn)]
    # the press opens the pole's live view, which a simulated pole without a camera refuses (409)
    assert not [e for e in errors if "/live" not in e and "status of 409" not in e], errors
