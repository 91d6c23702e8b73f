"""The responder's phone app and the operator's dispatch panel in real Chromium (Playwright) over HTTPS with a
certificate from the hub's own CA, trusted the way a phone trusts it (a throw-away NSS store holding ca.crt:
no ignore-HTTPS-errors), against a real broker, hub and pole: a 360x640 phone with geolocation granted and
moved, a task arriving live with vibration and sound, accept (the pole's LED says help is coming), on scene
far from the pole (a warning), resolved with photos through the file chooser (shrunk on the phone), and
checking out stops position tracking."""

from __future__ import annotations

import io
import os
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from hub.transport.broker import Broker
from tests.conftest import HubProc, ensure_user, wait_for
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

RESPONDER = ("zhang", "responder-pass-1")
OPERATOR = ("wang", "operator-pass-1")
POLE = (24.48, 118.11)


class HttpsHub(HubProc):
    """The hub serving HTTPS with a certificate its CA issued for 127.0.0.1 (`serve --tls-name`)."""

    def __init__(self, tmp: Path, broker_url: str) -> None:
        super().__init__(tmp, broker_url)
        self.args += ["--tls-name", "127.0.0.1", "--tls-name", "localhost"]
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = self.data_dir / "pki" / "ca.crt"

    def _ctx(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca.exists() else False

    def _healthy(self) -> bool:
        if not self.alive():
            raise AssertionError(f"hub exited:\n{self.output()[-3000:]}")
        if not self.ca.exists():
            return False
        try:
            r = httpx.get(f"{self.url}/api/health", timeout=1, verify=self._ctx())
            return r.status_code == 200 and r.json()["mqtt"] == "connected"
        except httpx.HTTPError:
            return False

    def login(self, username: str, password: str) -> str:
        r = httpx.post(f"{self.url}/api/login", json={"username": username, "password": password}, timeout=10,
                       verify=self._ctx())
        r.raise_for_status()
        return r.json()["token"]

    def get(self, path: str, **params):
        r = httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=10, verify=self._ctx())
        r.raise_for_status()
        return r.json()

    def put(self, path: str, body: dict) -> httpx.Response:
        return httpx.put(f"{self.url}{path}", json=body, headers=self.headers, timeout=10, verify=self._ctx())

    def raw(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers, timeout=10, verify=self._ctx())

    def add_pole(self, node: str) -> str:
        out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--grid", "G01",
                              "--place", "Test street", "--at", f"{POLE[0]},{POLE[1]}",
                              "--out", str(self.data_dir.parent / "bundles")],
                             env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]


@pytest.fixture()
def https_hub(tmp_path: Path, broker: Broker):
    hub = HttpsHub(tmp_path, broker.url)
    try:
        yield hub.start()
    finally:
        hub.stop()


@pytest.fixture()
def phone_browser(tmp_path: Path, https_hub: HttpsHub):
    """Chromium whose NSS store (in its own HOME) trusts the hub's CA, as a phone does once ca.crt is installed."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path("/usr/bin/certutil").exists():
        pytest.skip("certutil is missing: apt-get install libnss3-tools (scripts/bootstrap.sh does)")
    home = tmp_path / "home"
    nss = home / ".pki" / "nssdb"
    nss.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nss}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nss}", "-A", "-n", "pingan-ca", "-t", "C,,", "-i",
                    str(https_hub.ca)], check=True)
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else None, args=CHROMIUM_ARGS,
                               env={**os.environ, "HOME": str(home)})
    except Exception as exc:  # noqa: BLE001
        pw.stop()
        pytest.skip(f"no browser could be launched ({str(exc).splitlines()[0]}); apt-get install -y chromium")
    yield b
    b.close()
    pw.stop()


def photo_file(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (30, 120, 200)).save(path, "JPEG", quality=95)
    return path


def positions(hub: HttpsHub) -> int:
    db = sqlite3.connect(f"file:{hub.data_dir / 'hub.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM responder_positions").fetchone()[0]
    finally:
        db.close()


def test_a_task_from_press_to_resolved_on_the_phone_over_https(https_hub: HttpsHub, broker: Broker, node_factory,
                                                                phone_browser, tmp_path: Path) -> None:
    hub = https_hub
    node = node_factory("pole-07", broker.url, hub.add_pole("pole-07"))
    hub.wait_online("pole-07")
    ensure_user(hub.data_dir, *RESPONDER, "responder")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    r = hub.put("/api/teams/g01", {"name": "G01 网格员", "kind": "grid_staff", "grids": ["G01"],
                                   "shifts": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]})
    assert r.status_code == 200, r.text
    assert hub.put("/api/responders/zhang", {"name": "张伟", "team": "g01"}).status_code == 200

    phone = phone_browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True,
                                      locale="zh-CN", permissions=["geolocation"],
                                      geolocation={"latitude": 24.4810, "longitude": 118.1100})
    phone.add_init_script("navigator.vibrate = (p) => { window.__vibrated = p; return true; };")
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security" in m.text else None)

    page.goto(hub.url + "/r/")  # a certificate error would fail here: the CA is trusted, nothing ignored
    assert page.is_visible("#login") and "处置人员登录" in page.text_content("#login")
    assert page.evaluate("window.isSecureContext")
    page.fill("#login-user", RESPONDER[0])
    page.fill("#login-pass", RESPONDER[1])
    page.click("#login-submit")
    page.wait_for_selector("#app", state="visible")
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)").endswith("/r/")
    manifest = hub.raw("/r/manifest.webmanifest").json()
    assert manifest["start_url"] == "/r/" and manifest["display"] == "standalone"
    assert page.text_content("#duty-state").strip() == "未值班"

    page.check("#consent")
    page.click("#duty-toggle")
    page.wait_for_selector('#duty-state[data-on-duty="1"]')
    wait_for(lambda: positions(hub) >= 1, message="the phone's first fix stored")
    who = {p["username"]: p for p in hub.get("/api/responders")}["zhang"]
    assert abs(who["last_lat"] - 24.4810) < 1e-6
    phone.set_geolocation({"latitude": 24.4805, "longitude": 118.1100})  # walking towards the pole
    wait_for(lambda: abs({p["username"]: p for p in hub.get("/api/responders")}["zhang"]["last_lat"] - 24.4805)
             < 1e-6, timeout=30, message="the moved fix stored")

    # the operator sees the responder nearest first and dispatches from the card
    console = phone_browser.new_page(viewport={"width": 1280, "height": 900})
    console.on("pageerror", lambda exc: errors.append(str(exc)))
    console.goto(hub.url + "/")
    console.fill("#login-user", OPERATOR[0])
    console.fill("#login-pass", OPERATOR[1])
    console.click("#login-submit")
    console.wait_for_selector("#app-view", state="visible")
    console.wait_for_function("() => document.getElementById('conn').className === ''")
    node.control(cmd="press")
    card = console.wait_for_selector('.alarm[data-kind="alarm.pressed"] .d-open', timeout=20000)
    card.click()
    row = console.wait_for_selector(".d-people li")
    assert "张伟" in row.text_content() and "米" in row.text_content()
    console.check('.d-people input[value="zhang"]')
    console.click('[data-d="chosen"]')
    console.wait_for_selector('.d-status li[data-responder="zhang"][data-dstate="offered"]')

    task = page.wait_for_selector('.task[data-state="offered"]', timeout=20000)
    assert page.evaluate("window.__vibrated") and page.evaluate("document.body.dataset.alerts") == "1"
    text = task.text_content()
    assert "一键报警" in text and "Test street" in text and "G01" in text
    assert page.get_attribute(".task a.nav", "href") == f"geo:{POLE[0]},{POLE[1]}"
    page.wait_for_function("""() => { const i = document.querySelector('.task img.snap');
        return i && !i.hidden && i.naturalWidth > 0; }""", timeout=20000)  # the pole's snapshot
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "seen", message="LED: seen, nobody on the way yet")

    page.click('.task [data-act="accept"]')
    page.wait_for_selector('.task[data-state="accepted"]')
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "help_coming", message="LED: help coming")
    console.wait_for_selector('.d-status li[data-responder="zhang"][data-dstate="accepted"]')

    phone.set_geolocation({"latitude": 24.4830, "longitude": 118.1100})  # ~330 m from the pole
    page.click('.task [data-act="on_scene"]')
    page.wait_for_selector('.task[data-state="on_scene"] .warn')
    assert "200" in page.text_content(".task .warn")
    console.wait_for_selector('.d-status li[data-responder="zhang"][data-dstate="on_scene"]')

    big = photo_file(tmp_path / "scene-big.jpg", (3000, 2000))
    small = photo_file(tmp_path / "scene-small.jpg", (640, 480))
    with page.expect_file_chooser() as chooser:
        page.click('.task [data-f="photos"]')
    chooser.value.set_files([str(big), str(small)])
    page.select_option('.task [data-f="outcome"]', "assisted")
    page.fill('.task [data-f="note"]', "老人走失，已送回家")
    page.click('.task [data-act="resolve"]')
    page.wait_for_selector('.task[data-state="resolved"]', timeout=20000)
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "idle", message="LED back to idle")
    alarm = hub.get("/api/alarms", state="all")[0]
    assert alarm["state"] == "resolved" and alarm["outcome"] == "assisted" and alarm["resolved_by"] == "zhang"
    photos = hub.get(f"/api/alarms/{alarm['id']}/photos")
    assert len(photos) == 2
    first = Image.open(io.BytesIO(hub.raw(f"/api/alarms/{alarm['id']}/photos/{photos[0]['id']}").content))
    assert max(first.size) == 1600  # shrunk on the phone before upload
    console.wait_for_selector("article.alarm", state="detached")  # resolved: it leaves the operator's queue
    assert [d["state"] for d in hub.get(f"/api/alarms/{alarm['id']}/dispatches")] == ["resolved"]
    page.screenshot(path=str(tmp_path / "responder-phone.png"))
    # the operator's report: per team and responder, today
    console.click('[data-tab="reports"]')
    rep = console.wait_for_selector("#report-responders", timeout=20000)
    assert "张伟 (zhang)" in rep.text_content() and "处置人员" in rep.text_content()

    # going off duty stops tracking: the watch ends, and nothing more is stored however the phone moves
    page.click("#duty-toggle")
    page.wait_for_selector('#duty-state[data-on-duty="0"]')
    assert page.text_content("#gps") == "未共享位置"
    stored = positions(hub)
    phone.set_geolocation({"latitude": 24.4900, "longitude": 118.1200})
    time.sleep(7)  # longer than the phone's 5 s between fixes
    assert positions(hub) == stored
    assert {p["username"]: p for p in hub.get("/api/responders")}["zhang"]["last_lat"] is None

    page.click("#lang")
    assert page.text_content("#duty-toggle") == "Check in"
    assert not errors, errors
