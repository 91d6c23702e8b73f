"""Patrols: signed stickers (valid, forged, foreign, stale, retired, reprinted), check-ins with the phone's
position, refusals audited, coverage per grid per day and the longest night gap per pole (known answers)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.app import create_app
from hub.auth.service import User
from hub.config import load_settings
from hub.patrols.service import Patrols
from hub.patrols.tokens import PatrolKeys, TokenRefused
from hub.store.schema import audit, nodes, patrol_checkins

TZ = ZoneInfo("Asia/Shanghai")
POLE = (22.5000, 114.0000)


@pytest.fixture()
def env(tmp_path: Path):
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, timezone="Asia/Shanghai"))
    state = app.state.hub
    for node, grid in (("pole-01", "G01"), ("pole-02", "G01"), ("pole-03", "G02")):
        state.service.register_node(node, grid=grid, place=f"{node} place")
    state.service.register_node("door-01", grid="G02", kind="rental_door")
    with state.engine.begin() as conn:
        conn.execute(nodes.update().where(nodes.c.id == "pole-01").values(lat=POLE[0], lon=POLE[1]))
    state.auth.add_user("li", "li-password-1", "operator")
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "li", "password": "li-password-1"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield app, state, client, PatrolKeys(tmp_path)


def refusals(state) -> list[tuple[str, str]]:
    with state.engine.connect() as conn:
        return [(r.target, r.detail["reason"]) for r in conn.execute(
            select(audit).where(audit.c.action == "patrol.refused").order_by(audit.c.seq))]


def test_a_sticker_checks_in_with_who_when_and_where(env) -> None:
    app, state, client, keys = env
    token = keys.sign("pole-01")
    r = client.post("/api/patrols/checkins", json={"token": token, "lat": 22.5003, "lon": 114.0, "accuracy_m": 12})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["node"], body["grid"], body["place"], body["far"]) == ("pole-01", "G01", "pole-01 place", False)
    assert 30 < body["distance_m"] < 37  # 0.0003 degrees of latitude is about 33 m
    far = client.post("/api/patrols/checkins", json={"token": token, "lat": 22.51, "lon": 114.0}).json()
    assert far["far"] is True and far["distance_m"] > 1000  # a photographed sticker, scanned elsewhere
    no_fix = client.post("/api/patrols/checkins", json={"token": keys.sign("pole-03")}).json()
    assert no_fix["distance_m"] is None and no_fix["far"] is False
    rows = client.get("/api/patrols/checkins").json()
    assert [(c["node"], c["username"], c["lat"]) for c in rows] == [
        ("pole-01", "li", 22.5003), ("pole-01", "li", 22.51), ("pole-03", "li", None)]
    half = client.post("/api/patrols/checkins", json={"token": token, "lat": 22.5})
    assert half.status_code == 422


def test_forged_foreign_and_stale_stickers_are_refused_and_audited(env, tmp_path: Path) -> None:
    app, state, client, keys = env
    good = keys.sign("pole-01")
    other_hub = PatrolKeys(tmp_path / "elsewhere")
    other_hub.rotate()
    other_hub.rotate()  # k2: a key id this hub never had
    cases = {
        "forged": good[:-22] + ("A" * 22 if not good.endswith("A" * 22) else "B" * 22),  # wrong MAC
        "forged-node": good.replace("pole-01", "pole-02"),  # the pole's name changed: the MAC no longer fits
        "foreign": other_hub.sign("pole-01"),
        "stale": keys.sign("pole-01", issued=datetime.now(UTC) - timedelta(days=731)),
        "future": keys.sign("pole-01", issued=datetime.now(UTC) + timedelta(days=1)),
        "unknown-pole": keys.sign("pole-99"),
        "malformed": "https://example.com/not-a-token",
    }
    answers = {}
    for name, token in cases.items():
        r = client.post("/api/patrols/checkins", json={"token": token})
        assert r.status_code == 403, (name, r.text)
        answers[name] = r.json()["detail"]["reason"]
    assert answers == {"forged": "forged", "forged-node": "forged", "foreign": "foreign", "stale": "stale",
                       "future": "forged", "unknown-pole": "foreign", "malformed": "malformed"}
    assert "/" in client.post("/api/patrols/checkins", json={"token": cases["stale"]}).json()["detail"]["message"]
    with state.engine.connect() as conn:
        assert conn.execute(select(patrol_checkins)).first() is None  # nothing recorded
    assert refusals(state)[:7] == [("pole-01", "forged"), ("pole-02", "forged"), ("pole-01", "foreign"),
                                   ("pole-01", "stale"), ("pole-01", "forged"), ("pole-99", "foreign"),
                                   ("-", "malformed")]
    assert client.post("/api/patrols/checkins", json={"token": good}).status_code == 201


def test_key_rotation_keeps_old_stickers_until_retired_and_a_reprint_revokes_copies(env) -> None:
    app, state, client, keys = env
    old = keys.sign("pole-01")
    assert keys.rotate() == "k2"
    new = keys.sign("pole-02")
    assert new.split(".")[1] == "k2"
    post = lambda tok: client.post("/api/patrols/checkins", json={"token": tok})  # noqa: E731
    assert post(old).status_code == 201 and post(new).status_code == 201
    with pytest.raises(Exception, match="current key"):
        keys.retire("k2")
    keys.retire("k1")
    assert post(old).json()["detail"]["reason"] == "stale"
    assert post(new).status_code == 201
    # a copied sticker: the pole is reprinted with --revoke-older, copies of the earlier one stop working
    earlier = keys.sign("pole-03", issued=datetime.now(UTC) - timedelta(minutes=5))
    reprint = keys.sign("pole-03", revoke_older=True)
    assert post(earlier).json()["detail"]["reason"] == "stale"
    assert post(reprint).status_code == 201


def test_checkins_need_a_login_and_reports_need_operators(env) -> None:
    app, state, client, keys = env
    token = keys.sign("pole-01")
    with TestClient(app) as anon:
        assert anon.post("/api/patrols/checkins", json={"token": token}).status_code == 401
    state.auth.add_user("zhao", "installer-pass-1", "installer")
    login = client.post("/api/login", json={"username": "zhao", "password": "installer-pass-1"}).json()["token"]
    installer = {"Authorization": f"Bearer {login}"}
    assert client.post("/api/patrols/checkins", json={"token": token}, headers=installer).status_code == 201
    assert client.get("/api/patrols/report", headers=installer).status_code == 403


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def test_coverage_and_night_gaps_known_answers(env) -> None:
    app, state, client, keys = env
    user = User("li", "operator")
    p = Patrols(state.engine, keys, "Asia/Shanghai")
    visits = [("pole-01", at(2, 21)), ("pole-01", at(3, 1)), ("pole-01", at(3, 5)),  # night of the 2nd
              ("pole-02", at(2, 23, 30)),
              ("pole-03", at(2, 10)),  # daytime: coverage, no night visit
              ("pole-01", at(3, 12))]
    for node, when in visits:
        p.check_in(user, keys.sign(node, issued=when - timedelta(days=1)), now=when)
    cov = p.coverage(at(2, 0), at(4, 0))
    assert cov == [
        {"day": "2026-03-02", "grid": "G01", "poles": 2, "visited": 2, "coverage": 1.0, "checkins": 2},
        {"day": "2026-03-02", "grid": "G02", "poles": 1, "visited": 1, "coverage": 1.0, "checkins": 1},
        {"day": "2026-03-03", "grid": "G01", "poles": 2, "visited": 1, "coverage": 0.5, "checkins": 3},
        {"day": "2026-03-03", "grid": "G02", "poles": 1, "visited": 0, "coverage": 0.0, "checkins": 0}]
    gaps = {g["node"]: g for g in p.night_gaps(at(2, 0), at(3, 0), now=at(10, 0))}  # the night 2nd 20:00 - 3rd 08:00
    assert set(gaps) == {"pole-01", "pole-02", "pole-03"}  # poles only, not the door
    assert (gaps["pole-01"]["longest_gap_min"], gaps["pole-01"]["gap_from"], gaps["pole-01"]["gap_to"]) == (
        240.0, at(2, 21), at(3, 1))  # 20-21 is 60, 21-01 is 240, 01-05 is 240 (first wins), 05-08 is 180
    assert gaps["pole-02"]["longest_gap_min"] == 510.0  # 23:30 -> 08:00
    assert (gaps["pole-03"]["longest_gap_min"], gaps["pole-03"]["checkins_that_night"]) == (720.0, 0)
    # a night still running counts up to now
    live = {g["node"]: g for g in p.night_gaps(at(2, 0), at(3, 0), now=at(2, 22))}
    assert live["pole-03"]["longest_gap_min"] == 120.0

    r = client.get("/api/patrols/report", params={"from": "2026-03-02", "to": "2026-03-03"})
    assert r.status_code == 200
    assert r.json()["coverage"] == cov
    text = client.get("/api/patrols/coverage.csv", params={"from": "2026-03-02", "to": "2026-03-03"}).text
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:2] == ["日期 Day", "网格 Grid"] and rows[3] == ["2026-03-03", "G01", "2", "1", "0.5", "3"]
    gaps_csv = client.get("/api/patrols/night_gaps.csv", params={"from": "2026-03-02", "to": "2026-03-02"}).text
    rows = list(csv.reader(io.StringIO(gaps_csv.lstrip("\ufeff"))))
    assert rows[1][:5] == ["pole-01", "pole-01 place", "G01", "240.0", "2026-03-02"]
    assert rows[1][5:7] == ["2026-03-02 21:00", "2026-03-03 01:00"]  # in the centre's zone


def test_cli_prints_a_sticker_that_scans_to_a_valid_check_in(env, tmp_path: Path) -> None:
    import cv2

    app, state, client, keys = env
    cmd = [sys.executable, "-m", "hub.cli", "nodes", "qr", "pole-01"]
    environ = {"PINGAN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    no_url = subprocess.run([*cmd, "--png", str(tmp_path / "x.png")], env=environ, capture_output=True, text=True)
    assert no_url.returncode == 2 and "PINGAN_PUBLIC_URL" in no_url.stderr and "Traceback" not in no_url.stderr
    missing = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "qr", "pole-77", "--png", "x.png",
                              "--url", "https://hub.lan"], env=environ, capture_output=True, text=True)
    assert missing.returncode == 2 and "no node 'pole-77'" in missing.stderr
    out = subprocess.run([*cmd, "--png", str(tmp_path / "s.png"), "--svg", str(tmp_path / "s.svg"),
                          "--url", "https://hub.lan:8443"], env=environ, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    url = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(tmp_path / "s.png")))[0]
    assert url.startswith("https://hub.lan:8443/static/patrol.html#t=P1.k1.pole-01.")
    svg = (tmp_path / "s.svg").read_text()
    assert "pole-01" in svg and "pole-01 place" in svg and "平安巡逻签到" in svg and "G01" in svg
    token = url.split("#t=")[1]
    assert client.post("/api/patrols/checkins", json={"token": token}).status_code == 201
    with pytest.raises(TokenRefused):
        keys.verify(token + "x", now=datetime.now(UTC), max_age=timedelta(days=1))
