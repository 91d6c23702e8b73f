"""hub/notify against real peers: WeCom/DingTalk/SMS receivers that check the documented formats and
DingTalk's signature, failing and hanging receivers, and npm web-push-testing as the push service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.errors import SettingsError
from hub.notify.models import Notice
from hub.notify.service import Notifier
from tests.hub.notify_peers import DINGTALK_SECRET, PushService, Receiver, webpush_available

NOTICE = dict(alarm="a0000000-0000-4000-8000-000000000001", node="pole-07", place="东门 East gate", grid="G03",
              kind="alarm.pressed", text="居民按下求助按钮 / a resident pressed for help",
              url="https://hub.lan/r/a0000000", snapshot_url="https://hub.lan/api/events/x/snapshot")


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def make_app(tmp_path: Path, receiver: Receiver, *, wecom: str = "ok", dingtalk: str = "ok", sms: str = "ok",
             order: str = "wecom,dingtalk,sms", **extra: Any) -> Any:
    settings = load_settings(
        data_dir=tmp_path, mqtt_enabled=False, notify_order=order, notify_timeout_s=1,
        notify_wecom_webhook=f"{receiver.url}/wecom/{wecom}?key=robot-key",
        notify_dingtalk_webhook=f"{receiver.url}/dingtalk/{dingtalk}?access_token=robot-token",
        notify_sms_url=f"{receiver.url}/sms/{sms}", notify_sms_token="sms-token",
        **{"notify_dingtalk_secret": DINGTALK_SECRET, **extra})
    app = create_app(settings)
    state = app.state.hub
    for name, phone in (("li", "13800000001"), ("chen", "13800000002"), ("zhou", None)):
        state.auth.add_user(name, f"{name}-password-1", "operator")
        if phone:
            state.notifier.set_phone(name, phone)
    return app


def run(notifier: Notifier, recipients: list[str], **notice: Any) -> list[Any]:
    async def go() -> list[Any]:
        try:
            return await notifier.notify(recipients, Notice(**{**NOTICE, **notice}))
        finally:
            await notifier.aclose()

    return asyncio.run(go())


def summary(deliveries: list[Any]) -> list[tuple[str, str, str]]:
    return [(d.recipient, d.channel, d.status) for d in deliveries]


def test_wecom_robot_gets_its_documented_json_and_mentions_by_mobile(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver)
    out = run(app.state.hub.notifier, ["li", "chen", "zhou"])
    assert summary(out) == [("li", "wecom", "sent"), ("chen", "wecom", "sent"), ("zhou", "wecom", "sent")]
    assert receiver.problems == []
    [req] = receiver.of("wecom")  # one message in the group for all three
    assert req["body"]["text"]["mentioned_mobile_list"] == ["13800000001", "13800000002"]
    content = req["body"]["text"]["content"]
    assert "求助报警" in content and "东门 East gate" in content and "G03" in content and NOTICE["url"] in content
    assert not receiver.of("dingtalk") and not receiver.of("sms")  # delivered: nothing else is tried


def test_failing_robot_falls_over_to_signed_dingtalk(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, wecom="fail")
    out = run(app.state.hub.notifier, ["li", "chen"])
    assert summary(out) == [("li", "wecom", "failed"), ("chen", "wecom", "failed"),
                            ("li", "dingtalk", "sent"), ("chen", "dingtalk", "sent")]
    assert "api freq out of limit" in out[0].why and out[2].attempt == 2
    assert receiver.problems == []  # the receiver checked the signature and the @ in the text
    [req] = receiver.of("dingtalk")
    assert req["body"]["at"] == {"atMobiles": ["13800000001", "13800000002"], "isAtAll": False}


def test_a_wrong_dingtalk_secret_is_refused_by_the_receiver_and_recorded(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, order="dingtalk,sms", notify_dingtalk_secret="SECwrong")
    out = run(app.state.hub.notifier, ["li"])
    assert summary(out) == [("li", "dingtalk", "failed"), ("li", "sms", "sent")]
    assert "sign not match" in out[0].why
    [sms] = receiver.of("sms")
    assert sms["body"]["to"] == "13800000001"
    assert sms["body"]["text"].startswith("【平安】求助报警 东门 East gate（G03）")


def test_hanging_channels_time_out_and_the_next_one_delivers(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, wecom="hang", dingtalk="hang")
    out = run(app.state.hub.notifier, ["li", "zhou"])
    assert summary(out) == [("li", "wecom", "failed"), ("zhou", "wecom", "failed"),
                            ("li", "dingtalk", "failed"), ("zhou", "dingtalk", "failed"),
                            ("li", "sms", "sent"), ("zhou", "sms", "skipped")]
    assert all("timed out" in d.why for d in out[:4])
    assert out[5].why == "no phone number"


def test_nobody_reached_is_recorded_listed_per_alarm_and_told_to_the_consoles(tmp_path: Path,
                                                                               receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, wecom="fail", dingtalk="fail", sms="fail")
    told: list[Any] = []
    state = app.state.hub
    state.notifier.publish = told.extend
    state.auth.add_user("boss", "boss-password-1", "admin")
    out = run(state.notifier, ["li", "ghost", "grid:G03"])
    assert ("li", "sms", "failed") in summary(out) and "HTTP 503" in out[-1].why
    assert {(d.recipient, d.why) for d in out if d.channel == "-"} == {
        ("ghost", "no such user, or disabled"),
        ("grid:G03", "nobody is listed for grid:G03 (the duty roster has no one)")}
    assert told == [{"type": "notify.failed", "alarm": NOTICE["alarm"], "notice": out[0].notice,
                     "recipients": ["ghost", "grid:G03", "li"]}]
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "boss", "password": "boss-password-1"}).json()["token"]
        rows = client.get(f"/api/alarms/{NOTICE['alarm']}/deliveries", headers={"Authorization": f"Bearer {token}"})
    assert rows.status_code == 200
    assert [(r["recipient"], r["channel"], r["status"]) for r in rows.json()] == summary(out)
    assert all(r["duration_ms"] >= 0 and r["started_at"] <= r["finished_at"] for r in rows.json())


def test_groups_resolve_through_the_duty_roster_hook(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, order="sms")
    notifier = app.state.hub.notifier
    notifier.groups = lambda kind, ident: ["li", "chen"] if (kind, ident) == ("grid", "G03") else []
    out = run(notifier, ["grid:G03", "li"])  # li once, though named twice
    assert summary(out) == [("li", "sms", "sent"), ("chen", "sms", "sent")]


def test_bad_channel_settings_are_one_clear_error(tmp_path: Path) -> None:
    for bad, words in (
            ({"notify_order": "wecom,pager"}, "PINGAN_NOTIFY_ORDER: unknown channels ['pager']"),
            ({"notify_sms_template": "{kind} {who}"}, "PINGAN_NOTIFY_SMS_TEMPLATE: unknown fields ['who']"),
            ({"notify_sms_body": '{"to": "{phone}", "x": "{nope}"}'}, "PINGAN_NOTIFY_SMS_BODY: unknown fields"),
            ({"notify_sms_body": "[1"}, "PINGAN_NOTIFY_SMS_BODY: not JSON"),
            ({"notify_wecom_webhook": "qyapi.weixin.qq.com"}, "PINGAN_NOTIFY_WECOM_WEBHOOK: must be an http"),
            ({"notify_dingtalk_secret": "SECx"}, "notify_dingtalk_webhook is not"),
            ({"notify_vapid_subject": "pingan@x"}, "PINGAN_NOTIFY_VAPID_SUBJECT: must start with mailto:")):
        with pytest.raises(SettingsError) as err:
            load_settings(data_dir=tmp_path, **bad)
        assert words in str(err.value), (bad, str(err.value))


def test_no_channel_configured_is_recorded_not_silent(tmp_path: Path, receiver: Receiver) -> None:
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, notify_order="sms"))
    app.state.hub.auth.add_user("li", "li-password-1", "operator")
    out = run(app.state.hub.notifier, ["li"])
    assert summary(out) == [("li", "-", "failed")] and "no channel is configured" in out[0].why


def test_submit_from_another_thread_does_not_wait(tmp_path: Path, receiver: Receiver) -> None:
    """The alarm path hands a notice over and goes on; the delivery finishes on the hub's loop."""
    app = make_app(tmp_path, receiver, wecom="hang", order="wecom,sms")
    with TestClient(app):
        state = app.state.hub
        future = state.notifier.submit(["li"], Notice(**NOTICE))
        assert not future.done()  # the hanging robot is still being waited for, the caller is not
        out = future.result(10)
    assert summary(out) == [("li", "wecom", "failed"), ("li", "sms", "sent")]


@pytest.mark.skipif(not webpush_available(), reason="run scripts/bootstrap.sh (npm web-push-testing)")
def test_web_push_through_a_real_push_service(tmp_path: Path, receiver: Receiver) -> None:
    """web-push-testing checks our VAPID JWT against the key the browser subscribed with and decrypts."""
    app = make_app(tmp_path, receiver, order="webpush,sms")
    with PushService() as push, TestClient(app) as client:
        token = client.post("/api/login", json={"username": "li", "password": "li-password-1"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = client.get("/api/notify/webpush/key", headers=auth).json()
        assert key["available"] is True
        browser = push.subscribe(key["public_key"])
        stranger = push.subscribe(make_other_key(tmp_path))  # subscribed with another server's key
        r = client.post("/api/notify/webpush/subscriptions", headers=auth,
                        json={"endpoint": browser["endpoint"], "keys": browser["keys"]})
        assert r.status_code == 201, r.text
        bad = client.post("/api/notify/webpush/subscriptions", headers=auth,
                          json={"endpoint": "javascript:alert(1)", "keys": browser["keys"]})
        assert bad.status_code == 422
        state = app.state.hub
        out = state.notifier.submit(["li", "chen"], Notice(**NOTICE)).result(10)
        assert summary(out) == [("li", "webpush", "sent"), ("chen", "webpush", "skipped"), ("chen", "sms", "sent")]
        [msg] = push.messages(browser["clientHash"])
        assert msg["alarm"] == NOTICE["alarm"] and msg["url"] == NOTICE["url"] and "求助报警" in msg["title"]

        # chen's browser was subscribed with another key: the push service refuses our JWT, SMS follows
        login = client.post("/api/login", json={"username": "chen", "password": "chen-password-1"}).json()["token"]
        chen = {"Authorization": f"Bearer {login}"}
        assert client.post("/api/notify/webpush/subscriptions", headers=chen,
                           json={"endpoint": stranger["endpoint"], "keys": stranger["keys"]}).status_code == 201
        out = state.notifier.submit(["chen"], Notice(**NOTICE)).result(10)
        assert summary(out) == [("chen", "webpush", "failed"), ("chen", "sms", "sent")]
        assert "HTTP 400" in out[0].why
        assert push.messages(stranger["clientHash"]) == []

        # unregister: only one's own; then li is skipped on Web Push
        assert client.request("DELETE", "/api/notify/webpush/subscriptions", headers=chen,
                              json={"endpoint": browser["endpoint"]}).status_code == 404
        assert client.request("DELETE", "/api/notify/webpush/subscriptions", headers=auth,
                              json={"endpoint": browser["endpoint"]}).status_code == 204
        out = state.notifier.submit(["li"], Notice(**NOTICE)).result(10)
        assert summary(out) == [("li", "webpush", "skipped"), ("li", "sms", "sent")]


def make_other_key(tmp_path: Path) -> str:
    from hub.notify.channels import load_or_make_vapid, vapid_public_key

    return vapid_public_key(load_or_make_vapid(tmp_path / "other" / "vapid.pem"))


def test_contacts_and_the_test_notice_through_the_api(tmp_path: Path, receiver: Receiver) -> None:
    app = make_app(tmp_path, receiver, order="sms")
    state = app.state.hub
    state.auth.add_user("boss", "boss-password-1", "admin")
    with TestClient(app) as client:
        def login(user: str, pw: str) -> dict[str, str]:
            token = client.post("/api/login", json={"username": user, "password": pw}).json()["token"]
            return {"Authorization": f"Bearer {token}"}

        admin, operator = login("boss", "boss-password-1"), login("li", "li-password-1")
        assert client.put("/api/notify/contacts/zhou", json={"phone": "13900000009"}, headers=admin).status_code == 204
        assert client.put("/api/notify/contacts/ghost", json={"phone": "13900000001"}, headers=admin).status_code == 404
        assert client.put("/api/notify/contacts/zhou", json={"phone": "call me"}, headers=admin).status_code == 422
        assert client.put("/api/notify/contacts/zhou", json={"phone": "1"}, headers=operator).status_code == 403
        r = client.post("/api/notify/test", json={"recipients": ["zhou"], "text": "测试 test"}, headers=admin)
        assert r.status_code == 200
        assert [(d["recipient"], d["channel"], d["status"]) for d in r.json()] == [("zhou", "sms", "sent")]
        assert client.post("/api/notify/test", json={"recipients": ["zhou"]}, headers=operator).status_code == 403
    [sms] = receiver.of("sms")
    assert sms["body"]["to"] == "13900000009"
    assert "测试报警" in sms["body"]["text"] and "测试 test" in sms["body"]["text"]
