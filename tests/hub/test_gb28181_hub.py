"""City networking inside the whole hub: settings, IDs, the CLI, /api/health, /metrics, and the alarm path
through ingest to sipp playing the city platform; a dead or refusing platform never touches the alarm path."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.protocol import Event, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.errors import SettingsError
from hub.gb28181 import digest, ids, manscdp
from hub.gb28181.invite import SdpRefused, parse_offer
from hub.gb28181.sip import BodyTooLarge, SipParseError, parse_datagram
from hub.ingest.writer import Incoming
from hub.transport.broker import free_port
from tests import sipp
from tests.fake_transport import FakeTransport
from tests.hub.test_gb28181_subscribe import Platform

HUB_ID = "34020000002000000001"
PLATFORM_ID = "34020000002000000002"
TOKEN = "gb-metrics-token"


# --- settings, IDs, bodies (no network)

@pytest.mark.parametrize("overrides, says", [
    ({"gb_upstream": "http://10.1.2.3:5060", "gb_id": HUB_ID, "gb_password": "x"}, "PINGAN_GB_UPSTREAM"),
    ({"gb_upstream": f"sip:{PLATFORM_ID}@10.1.2.3:5060;transport=sctp", "gb_id": HUB_ID, "gb_password": "x"},
     "transport=udp"),
    ({"gb_upstream": f"sip:{PLATFORM_ID}@10.1.2.3:5060", "gb_password": "x"}, "PINGAN_GB_ID is not"),
    ({"gb_upstream": f"sip:{PLATFORM_ID}@10.1.2.3:5060", "gb_id": HUB_ID}, "PINGAN_GB_PASSWORD is not"),
    ({"gb_id": "3402"}, "20-digit"),
    ({"gb_civil_code": "3402a"}, "8-digit civil code"),
    ({"gb_keepalive_s": 0}, "PINGAN_GB_KEEPALIVE_S"),
])
def test_bad_gb_settings_are_one_sentence(tmp_path: Path, overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(data_dir=tmp_path, **overrides)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_password_may_come_from_systemds_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pingan-gb-password").write_text("from-a-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load_settings(data_dir=tmp_path, gb_id=HUB_ID, gb_upstream=f"sip:{PLATFORM_ID}@10.1.2.3:5060")
    assert settings.gb_password == "from-a-credential"


def test_networking_is_off_without_an_upstream(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, gb_id=HUB_ID))
    with TestClient(app) as client:
        assert client.get("/api/health").json()["gb28181"] is None


def test_a_bad_serve_setting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path), "PINGAN_GB_UPSTREAM": "sip:1@x:5060"}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "serve"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "PINGAN_GB_UPSTREAM" in out.stderr and "Traceback" not in out.stderr


def test_ids_channels_and_prefix_rule() -> None:
    assert ids.check_gb_id("35020300001320000007", kind="alarm_post")
    with pytest.raises(ids.GbIdError, match="type code 132"):
        ids.check_gb_id("35020300001340000007", kind="alarm_post")
    with pytest.raises(ids.GbIdError, match="20 digits"):
        ids.check_gb_id("3502030000132000000")
    assert ids.channel("35020300001320000007", ids.TYPE_ALARM_OUTPUT) == "35020300001350000007"
    assert ids.prefix_of(None, HUB_ID) == "3402000000"
    assert ids.prefix_of("35020300", HUB_ID) == "3502030000"
    assert ids.make_id("3502030001", "132", {"0000001", "0000002"}) == "35020300011320000003"


def test_nodes_add_takes_a_checked_gb_id(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", *args, "--out", str(tmp_path / "b"),
                               "--broker-url", "mqtt://127.0.0.1:1883"], env=env, capture_output=True, text=True,
                              timeout=60)

    bad = cli("pole-71", "--gb-id", "35020300001340000001")
    assert bad.returncode == 2 and "type code 132" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("pole-71", "--gb-id", "35020300001320000001").returncode == 0
    clash = cli("pole-72", "--gb-id", "35020300001320000001")
    assert clash.returncode == 2 and "clashes with node pole-71" in clash.stderr


def test_digest_matches_rfc_2617s_example() -> None:
    # RFC 2617 section 3.5: Mufasa / Circle Of Life, qop=auth
    challenge = digest.parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                       'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                                       'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = digest.authorization(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                                 password="Circle Of Life", nc=1, cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value
    with pytest.raises(digest.DigestError, match="SHA-512"):
        digest.parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-512')


def test_manscdp_is_gb2312_and_read_tolerantly() -> None:
    body = manscdp.render("Notify", [("CmdType", "Alarm"), ("AlarmDescription", "一键报警 <&> 𠀋")])
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
    assert "一键报警".encode("gb2312") in body and b"&lt;&amp;&gt;" in body and b"&#131083;" in body
    root = manscdp.parse(body)
    assert manscdp.text_of(root, "AlarmDescription") == "一键报警 <&> 𠀋"
    assert manscdp.text_of(manscdp.parse(b'<?xml version="1.0" encoding="UTF-8"?><Query><SN>1</SN></Query>'
), "SN") == "1"
    with pytest.raises(manscdp.ManscdpError):
        manscdp.parse(b'<!DOCTYPE x [<!ENTITY a "b">]><Query>&a;</Query>')


def test_sip_parsing_is_strict() -> None:
    ok = parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\n"
                        b"i: c1\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n")
    assert ok.method == "OPTIONS" and ok.call_id == "c1" and ok.get("Content-Length") == "0"
    for bad in (b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", b"HELLO\r\n\r\n", b"no blank line",
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: one OPTIONS\r\n\r\n"):
        with pytest.raises(SipParseError):
            parse_datagram(bad)
    with pytest.raises(BodyTooLarge):
        parse_datagram(b"MESSAGE sip:a@b SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n"
                       b"Content-Length: 99999999\r\n\r\n")


def test_sdp_offers() -> None:
    offer = parse_offer(b"v=0\r\no=x 0 0 IN IP4 10.0.0.9\r\ns=Play\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
                        b"m=video 6000 TCP/RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\na=setup:active\r\ny=0200000001\r\n")
    assert (offer.host, offer.port, offer.transport, offer.ssrc) == ("10.0.0.9", 6000, "tcp-passive", "0200000001")
    with pytest.raises(SdpRefused) as err:
        parse_offer(b"v=0\r\ns=Download\r\nc=IN IP4 1.2.3.4\r\nm=video 6000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\n")
    assert err.value.status == 488 and err.value.warning == "the node does not record"
    with pytest.raises(SdpRefused) as err:
        parse_offer(b"v=0\r\ns=Play\r\nc=IN IP4 1.2.3.4\r\nm=video 6000 RTP/AVP 98\r\na=rtpmap:98 H264/90000\r\n")
    assert err.value.status == 488 and "PS/90000" in err.value.reason


# --- the whole hub

def _hub(tmp_path: Path, upstream_port: int, **kw: Any) -> tuple[Any, FakeTransport]:
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=True, metrics_token=TOKEN, offline_grace_s=0,
                             gb_id=HUB_ID, gb_password=kw.pop("password", "12345678"),
                             gb_upstream=f"sip:{PLATFORM_ID}@127.0.0.1:{upstream_port};transport=udp",
                             gb_sip_port=kw.pop("sip_port", None) or free_port(), gb_sip_host="127.0.0.1",
                             gb_keepalive_s=1)
    fake = FakeTransport()
    app = create_app(settings, transport=fake)
    app.state.hub.auth.add_user("li", "correct horse battery", "admin")
    return app, fake


def _login(client: TestClient) -> None:
    token = client.post("/api/login", json={"username": "li", "password": "correct horse battery"}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"


def _press(app: Any, node: str = "pole-01") -> Event:
    ev = Event.make(node, "alarm.pressed", {"count": 1})
    app.state.hub.ingest.handle_batch([Incoming(Topics.events(node), ev.to_bytes(), 1, 1, utcnow())])
    return ev


def _wait(cond: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(sipp.SIPP is None, reason="sipp (Debian sip-tester) is not installed")
def test_a_press_through_ingest_goes_up_to_the_city_and_shows_in_health_and_metrics(tmp_path: Path) -> None:
    up = sipp.start("upper_platform.xml", tmp_path, transport="udp", fields=[["3402000000", "12345678", HUB_ID]],
                    timeout_s=60)
    app, _ = _hub(tmp_path, up.port)
    with TestClient(app) as client:
        _login(client)
        gb = lambda: client.get("/api/health").json()["gb28181"]  # noqa: E731
        _wait(lambda: gb()["state"] == "registered", "registration")
        ev = _press(app)
        _wait(lambda: gb()["alarms_sent"] == 1, "the alarm at the city platform")
        assert client.get("/api/alarms").json()[0]["id"] == str(ev.id)
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert 'pingan_hub_gb28181_state{state="registered"} 1.0' in metrics
        assert 'pingan_hub_gb28181_messages_total{kind="alarm"}' in metrics
    up.stop()
    alarm = next(m for m in up.received("MESSAGE ") if "<CmdType>Alarm</CmdType>" in m)
    assert "<DeviceID>34020000001340000001</DeviceID>" in alarm and "一键报警" in alarm  # pole-01's button
    assert "Expires: 0" in up.received("REGISTER ")[-1]  # the hub's shutdown unregistered


def test_a_dead_platform_or_a_taken_sip_port_never_touches_the_alarm_path(tmp_path: Path) -> None:
    silent = free_port()  # nothing listens there
    app, fake = _hub(tmp_path / "a", silent)
    app.state.hub.gb.registration.answer_timeout_s = 0.5
    with TestClient(app) as client:
        _login(client)
        _wait(lambda: client.get("/api/health").json()["gb28181"]["state"] == "offline", "offline")
        started = time.monotonic()
        ev = _press(app)
        assert time.monotonic() - started < 2  # the press is not held up by the city (not a benchmark: a hang)
        assert client.get("/api/events").json()[0]["id"] == str(ev.id)
        assert any(str(ev.id) in p.decode() for t, p in fake.published if t == Topics.receipts("pole-01"))
        health = client.get("/api/health").json()["gb28181"]
        assert health["last_error"] == "no answer from the city platform to REGISTER"
    # the SIP port is taken: the hub starts and works without city networking
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        app, _ = _hub(tmp_path / "b", silent, sip_port=taken.getsockname()[1])
        with TestClient(app) as client:
            _login(client)
            assert client.get("/api/health").json()["gb28181"] is None
            ev = _press(app)
            assert client.get("/api/events").json()[0]["id"] == str(ev.id)


def test_health_model_names_the_registrations_states() -> None:
    from typing import get_args

    from hub.api.models.routes import GbHealth
    from hub.gb28181.registration import STATES

    assert set(get_args(GbHealth.model_fields["state"].annotation)) == set(STATES)


def test_city_networking_moves_with_the_replicas_leadership(tmp_path: Path) -> None:
    """Replicas share one hub ID: only the leader registers; a former leader unregisters, a new one registers."""
    platform = Platform()
    loop = asyncio.new_event_loop()
    serving = loop.create_task(platform.serve())
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.gather(serving, return_exceptions=True)),
                              daemon=True)
    thread.start()
    try:
        app, _ = _hub(tmp_path, platform.port)
        state = app.state.hub
        with TestClient(app) as client:
            gb = lambda: client.get("/api/health").json()["gb28181"]  # noqa: E731
            _wait(lambda: (gb() or {}).get("state") == "registered", "registration")
            state.cluster._leader = False  # another replica took the lock
            _wait(lambda: gb() is None, "city networking stopped on the former leader")
            assert [m.get("Expires") for m in platform.got if m.method == "REGISTER"][-1] == "0"
            state.cluster._leader = True
            _wait(lambda: (gb() or {}).get("state") == "registered", "registered again as the leader")
    finally:
        loop.call_soon_threadsafe(serving.cancel)
        thread.join(2)
        platform.sock.close()
        loop.close()


def test_the_dialog_target_is_the_contact_else_the_from_uri() -> None:
    """One reading for INVITE (our BYE) and SUBSCRIBE (our NOTIFYs): a request without Contact is answered
    at its From's URI, not at the raw header (tag and all)."""
    from hub.gb28181.sip import SipMessage, remote_target, uri_of

    assert uri_of('"city" <sip:3402@10.0.0.9:5060>;tag=a') == "sip:3402@10.0.0.9:5060"
    assert uri_of("sip:3402@10.0.0.9:5060;tag=a") == "sip:3402@10.0.0.9:5060"
    assert uri_of("") is None
    req = SipMessage(method="SUBSCRIBE", uri="sip:x@y")
    req.add("From", "<sip:3402@3402000000>;tag=b")
    assert remote_target(req) == "sip:3402@3402000000"
    req.add("Contact", "<sip:3402@10.0.0.9:5070>")
    assert remote_target(req) == "sip:3402@10.0.0.9:5070"
