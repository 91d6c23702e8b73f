"""Web Push on the responder's phone page in real Chromium (issue 18): the page's button registers the push
worker and asks the browser's push service; what the browser answers is said in the page's language. A test
browser has no push service (Playwright's contexts are incognito, where Chrome refuses the Push API, and
Chrome's service is Google's FCM, unreachable here as in mainland China), so the subscription itself is
refused here: the test checks that refusal is told plainly, then hands the worker the
exact payload the hub's Web Push channel sends (hub/notify/channels.py push_payload) through the DevTools
protocol, as the push service would, and reads the notification the worker shows."""

from __future__ import annotations

import httpx
import pytest

from hub.notify.channels import push_payload
from hub.notify.models import Notice
from hub.transport.broker import Broker
from tests.conftest import ensure_user
from tests.web.test_browser import launched_chromium, watch_errors

RESPONDER = ("zhang", "responder-pass-1")


@pytest.fixture()
def browser():
    yield from launched_chromium()


def _phone_login(ctx, url: str):  # noqa: ANN001, ANN202
    page = ctx.new_page()
    errors = watch_errors(page)
    page.goto(url + "/r/")
    page.fill("#login-user", RESPONDER[0])
    page.fill("#login-pass", RESPONDER[1])
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible")
    return page, errors


def _push_answer(page) -> str:  # noqa: ANN001
    page.click("#push-on")
    page.wait_for_function("() => document.getElementById('push-msg').dataset.reason", timeout=30000)
    return str(page.get_attribute("#push-msg", "data-reason"))


def test_the_phone_says_what_its_browser_answered_and_shows_what_the_hub_pushes(broker: Broker, hub_factory,
                                                                                 browser) -> None:
    hub = hub_factory(broker.url)  # http://127.0.0.1: a secure context, as HTTPS is on a real phone
    ensure_user(hub.data_dir, *RESPONDER, "responder")
    r = httpx.put(hub.url + "/api/teams/g01", headers=hub.headers, json={
        "name": "G01", "kind": "grid_staff", "grids": ["G01"]})
    assert r.status_code == 200, r.text
    r = httpx.put(hub.url + "/api/responders/zhang", headers=hub.headers, json={"name": "张伟", "team": "g01"})
    assert r.status_code == 200, r.text

    # notifications blocked on this phone: said, nothing registered
    blocked = browser.new_context(locale="zh-CN")
    page, errors = _phone_login(blocked, hub.url)
    assert _push_answer(page) == "denied"
    assert "通知权限被拒绝" in page.inner_text("#push-msg")
    blocked.close()

    ctx = browser.new_context(locale="zh-CN", permissions=["notifications"])
    page, errors = _phone_login(ctx, hub.url)
    cdp = ctx.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda p: registrations.extend(p["registrations"]))
    cdp.send("ServiceWorker.enable")
    answer = _push_answer(page)
    if answer == "on":  # a browser with a push service: the subscription reached the hub
        pytest.fail("this Chromium has a push service: check the subscription at the hub instead")
    assert answer == "no_service", page.inner_text("#push-msg")
    assert "推送服务不可用" in page.inner_text("#push-msg") and "短信" in page.inner_text("#push-msg")
    page.click("#lang")
    page.click("#push-on")
    page.wait_for_function("() => document.getElementById('push-msg').textContent.includes('unreachable')",
                           timeout=30000)

    page.wait_for_timeout(300)
    [worker] = [r for r in registrations if r["scopeURL"].endswith("/static/") and not r["isDeleted"]][-1:]
    notice = Notice(alarm="a5d3", node="pole-07", place="东门菜市场", grid="G01", kind="alarm.pressed",
                    url="/r/#task=d1", text="一键报警：请前往现场")
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": hub.url, "registrationId": worker["registrationId"],
                                                  "data": push_payload(notice).decode()})
    page.wait_for_function("""() => navigator.serviceWorker.getRegistration('/static/')
        .then((r) => r.getNotifications()).then((n) => n.length > 0)""", timeout=10000)
    shown = page.evaluate("""() => navigator.serviceWorker.getRegistration('/static/').then((r) => r.getNotifications())
        .then((ns) => ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data.url,
                                       sticky: n.requireInteraction})))""")
    assert shown == [{"title": "平安 求助报警 东门菜市场 （G01）", "body": "一键报警：请前往现场", "tag": "a5d3",
                      "url": "/r/#task=d1", "sticky": True}]
    expected = ("push", "401 " + hub.url + "/api/responder/me")  # the refusal above; the page's check before login
    assert not [e for e in errors if not any(x in e.lower() for x in expected)], errors
