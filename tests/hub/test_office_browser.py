"""The community office screen in Debian's Chromium against real servers: mosquitto, ``pingan-hub serve`` and a
``pingan-edge run`` door with the R30x simulator on a pty (the real driver talks to it).

A block and its door are set up on the screen; a tenant is registered (after the bad inputs are refused in
the screen's language, nothing stored), enrols at the door with the reader's prompts shown live, the finger
opens the door, the tenant is revoked and the finger is refused; the door log shows both; an import with bad
rows and an XLSX that is not one are refused row by row. At 1366x768 and 1920x1080, with no overlay over an
action button; axe-core on the screen where the console's npm tools are installed."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.doors.registration import ID_CHECK, ID_WEIGHTS
from hub.transport.broker import Broker
from tests.conftest import ADMIN, wait_for
from tests.e2e.test_e2e_door import BLOCK_KEY, DOOR, door_factory, register_door  # noqa: F401 - the fixture
from tests.web.test_browser import launched_chromium, login

ROOT = Path(__file__).resolve().parents[2]
DOOR_ID = "door-c01-01"
FINGER = 42


def resident_id(first17: str) -> str:
    return first17 + ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


GOOD_ID = resident_id("35020319900101123")
BAD_ID = GOOD_ID[:17] + ("0" if GOOD_ID[17] != "0" else "1")


@pytest.fixture()
def browser():
    yield from launched_chromium()


def axe_script() -> Path | None:
    """axe-core from the console's pinned npm tools (tools/web, scripts/bootstrap.sh), or PINGAN_AXE_JS."""
    for p in (os.environ.get("PINGAN_AXE_JS", ""), str(ROOT / "tools/web/node_modules/axe-core/axe.min.js")):
        if p and Path(p).is_file():
            return Path(p)
    return None


def covered_buttons(page) -> list[str]:
    """Visible buttons of the office screen whose centre is under something else (an overlay)."""
    return page.evaluate("""() => [...document.querySelectorAll('#tab-office button')].filter((b) => {
        const r = b.getBoundingClientRect();
        if (!r.width || !r.height) return false;
        b.scrollIntoView({block: 'center'});
        const q = b.getBoundingClientRect();
        const at = document.elementFromPoint(q.x + q.width / 2, q.y + q.height / 2);
        return !(at === b || b.contains(at));
      }).map((b) => b.id || b.textContent)""")


def error_codes(page, selector: str = "#o-form-errors li") -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.code)")


def fill_form(page, **values: str) -> None:
    for field, value in values.items():
        page.fill(f"#o-{field}", value)
    page.click("#o-register")


@pytest.mark.slow
@pytest.mark.parametrize("viewport", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
def test_office_registers_enrols_opens_revokes_and_refuses(
        broker: Broker, hub_factory, door_factory, browser,  # noqa: F811 - door_factory: the imported fixture
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, viewport: tuple[int, int]) -> None:
    monkeypatch.setenv("PINGAN_BLOCK_KEY", BLOCK_KEY)
    hub = hub_factory(broker.url)
    door = door_factory(DOOR_ID, broker.url, register_door(hub, DOOR_ID), **DOOR)
    hub.wait_online(DOOR_ID)
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text)  # a refused form's 422 is expected, nothing else
            if m.type == "error" and "status of 422" not in m.text and "status of 401" not in m.text else None)
    page.on("dialog", lambda d: d.accept())
    login(page, hub.url, *ADMIN)  # (the page asks /api/me before the login: a 401, expected)
    page.click("#tab-btn-office")
    page.wait_for_selector("#o-form", state="visible")
    assert page.is_hidden("#tab-alarms") and "社区登记" in page.text_content("#tab-btn-office")

    # every string in both languages: the same keys, and no key shown raw on the screen
    zh, en = page.evaluate("import('/static/screens/office.js')"
                           ".then(m => [Object.keys(m.STRINGS.zh), Object.keys(m.STRINGS.en)])")
    assert set(zh) == set(en), set(zh) ^ set(en)

    # a block with its units and the door, on the screen
    page.fill("#o-block-id", "c01")
    page.fill("#o-block-name", "春晖公寓")
    page.fill("#o-block-units", "101, 102，201")
    page.click("#o-add-block")
    page.wait_for_selector('#o-blocks tr[data-block="c01"]')
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#o-door-node option')].some(o => o.value === '{DOOR_ID}')")
    page.select_option("#o-door-node", DOOR_ID)
    page.select_option("#o-door-block", "c01")
    page.click("#o-add-door")
    page.wait_for_function(
        f"() => document.querySelector('#o-blocks tr[data-block=\"c01\"]').textContent.includes('{DOOR_ID}')")
    assert [b["doors"] for b in hub.get("/api/doors/blocks")] == [[DOOR_ID]]

    # bad input: a wrong check digit, a lease ending before it starts; clear errors, nothing stored
    page.select_option("#o-block", "c01")
    page.select_option("#o-unit", "102")
    fill_form(page, **{"name": "林晓", "id": BAD_ID, "phone": "13800000042", "lease-start": "2026-12-01",
                       "lease-end": "2027-11-30"})
    page.wait_for_selector("#o-form-errors li")
    assert error_codes(page) == ["id_check_digit"] and "校验位" in page.text_content("#o-form-errors")
    assert page.get_attribute("#o-id", "aria-invalid") == "true"
    fill_form(page, **{"id": GOOD_ID, "lease-start": "2027-12-01", "lease-end": "2027-11-30"})
    page.wait_for_function("() => document.querySelector('#o-form-errors li')?.dataset.code === 'lease_order'")
    assert "租期结束早于开始" in page.text_content("#o-form-errors")
    page.click("button.lang >> visible=true")  # English: the same error in English
    page.wait_for_function("() => document.getElementById('tab-btn-office').textContent === 'Community office'")
    page.click("#o-register")
    page.wait_for_function("() => document.querySelector('#o-form-errors li')?.textContent.includes('ends before')")
    assert hub.get("/api/doors/tenants") == []
    assert not page.evaluate(r"""() => [...document.querySelectorAll('#tab-office *')].some((el) =>
        [...el.childNodes].some((n) => n.nodeType === 3 && /^\s*[a-z]+(_[a-z0-9]+)+\s*$/.test(n.textContent)))""")

    # registered; the ID number masked once saved; the dates in year-month-day, the district's days
    fill_form(page, **{"lease-start": "2026-12-01", "lease-end": "2027-11-30"})
    row = page.wait_for_selector('#o-tenants tr[data-state="active"]')
    assert "**************" + GOOD_ID[-4:] in row.text_content() and GOOD_ID not in page.content()
    assert "2026-12-01 – 2027-11-30" in row.text_content()
    (tenant,) = hub.get("/api/doors/tenants")
    # the same person twice in the unit: refused, nothing stored
    fill_form(page, **{"name": "林晓", "id": GOOD_ID, "phone": "13800000043"})
    page.wait_for_function("() => document.querySelector('#o-form-errors li')?.dataset.code === 'duplicate'")
    assert len(hub.get("/api/doors/tenants")) == 1
    page.click("button.lang >> visible=true")  # back to Chinese for the rest
    page.wait_for_function("() => document.getElementById('tab-btn-office').textContent === '社区登记'")

    # enrol at the door: the reader's prompts arrive live, the simulated finger follows them
    tr = f'#o-tenants tr[data-tenant="{tenant["id"]}"]'
    page.select_option(f"{tr} .o-enrol-door", DOOR_ID)
    page.click(f'{tr} button[data-act="enrol"]')
    page.wait_for_selector('#o-enrol li[data-step="place"][data-n="1"]', timeout=20000)
    assert "请将手指放在读头上" in page.text_content("#o-enrol")
    door.control(cmd="finger", finger=FINGER, hold_s=0.6)
    page.wait_for_selector('#o-enrol li[data-step="lift"]', timeout=20000)
    page.wait_for_selector('#o-enrol li[data-step="place"][data-n="2"]', timeout=20000)
    door.control(cmd="finger", finger=FINGER, hold_s=0.6)
    page.wait_for_selector('#o-enrol li[data-step="done"]', timeout=20000)
    page.wait_for_selector('#o-enrol[data-state="done"]', timeout=20000)
    page.wait_for_selector(f'{tr} .enr-enrolled[data-door="{DOOR_ID}"]', timeout=20000)
    steps = page.eval_on_selector_all("#o-enrol li", "els => els.map(e => e.dataset.step)")
    assert steps == ["place", "lift", "place", "done"]
    assert covered_buttons(page) == []

    # the finger opens the door
    wait_for(lambda: not door.control(cmd="state")["state"]["busy"], message="the door scans again")
    door.control(cmd="finger", finger=FINGER)
    wait_for(lambda: door.control(cmd="state")["state"]["grants"] == 1, message="door granted")

    # revoked: the finger is refused
    page.click(f'{tr} button[data-act="revoke"]')
    page.wait_for_selector(f'{tr}[data-state="revoked"] .enr-revoked', timeout=20000)
    assert door.control(cmd="state")["state"]["access"] == []
    door.control(cmd="finger", finger=FINGER)
    wait_for(lambda: door.control(cmd="state")["state"]["denials"] >= 1, message="door denied")

    # the door log of the door: both, with the tenant; exportable
    wait_for(lambda: hub.get("/api/events", node=DOOR_ID, kind="door.denied"), message="the denial at the hub")
    page.select_option("#o-log-by", "door")
    page.select_option("#o-log-what", DOOR_ID)
    page.click("#o-log-show")
    page.wait_for_selector('#o-log tr[data-kind="door.denied"]')
    granted = page.text_content('#o-log tr[data-kind="door.granted"]')
    assert "林晓" in granted and "开门" in granted
    assert page.get_attribute("#o-log-csv", "href") == f"/api/doors/audit.csv?door={DOOR_ID}"
    csv_text = page.evaluate("fetch(document.getElementById('o-log-csv').href).then(r => r.text())")
    assert "door.granted" in csv_text and "door.denied" in csv_text

    # an import with bad rows: each listed, nothing stored; an XLSX that is not one
    sheet = io.StringIO()
    csv.writer(sheet).writerows([
        ["姓名", "身份证号", "手机", "楼栋", "房号", "租期开始", "租期结束"],
        ["王芳", resident_id("11010519491231002"), "13800000051", "c01", "101", "2026-12-01", "2027-11-30"],
        ["李强", BAD_ID, "13800000052", "c01", "201", "2026-12-01", "2027-11-30"],
        ["赵敏", resident_id("44030419850615002"), "13800000053", "c01", "999", "2026-12-01", "2027-11-30"]])
    page.set_input_files("#o-file", files=[{"name": "登记表.csv", "mimeType": "text/csv",
                                            "buffer": sheet.getvalue().encode("utf-8-sig")}])
    page.click("#o-import")
    page.wait_for_selector("#o-import-errors tr[data-row]")
    rows = page.eval_on_selector_all("#o-import-errors tr[data-row]",
                                     "els => els.map(e => [e.dataset.row, e.dataset.code])")
    assert rows == [["3", "id_check_digit"], ["4", "unit_unknown"]]
    assert "未保存任何记录" in page.text_content("#o-import-errors")
    page.set_input_files("#o-file", files=[{"name": "登记表.xlsx", "mimeType": "application/octet-stream",
                                            "buffer": b"this is a renamed text file"}])
    page.click("#o-import")
    page.wait_for_function("() => document.querySelector('#o-import-errors li')?.dataset.code === 'file_not_xlsx'")
    assert "不是有效的 XLSX" in page.text_content("#o-import-errors")
    assert len(hub.get("/api/doors/tenants")) == 1
    assert covered_buttons(page) == []
    page.screenshot(path=str(tmp_path / f"office-{viewport[0]}.png"), full_page=True)
    assert problems == []


@pytest.mark.slow
def test_office_screen_has_no_serious_accessibility_violations(broker: Broker, hub_factory, browser) -> None:
    axe = axe_script()
    if axe is None:
        pytest.skip("axe-core is not installed (the console's npm tools: tools/web, scripts/bootstrap.sh)")
    hub = hub_factory(broker.url)
    hub.post("/api/doors/blocks", {"id": "c02", "name": "Block 2", "units": ["101"]})
    hub.post("/api/doors/tenants", {"name": "林晓", "phone": "13800000042", "id_number": GOOD_ID, "block": "c02",
                                    "unit": "101", "lease_start": "2026-12-01", "lease_end": "2026-12-20"})
    page = browser.new_page(viewport={"width": 1366, "height": 768}, bypass_csp=True)  # axe is injected inline
    login(page, hub.url, *ADMIN)
    page.click("#tab-btn-office")
    page.wait_for_selector('#o-tenants tr[data-tenant]')
    page.click("#o-register")  # with its errors shown
    page.wait_for_selector("#o-form-errors li")
    page.click("#o-days-30")  # a lease to renew, with its date input
    page.wait_for_selector('#o-leases table[data-days="30"] .o-renew-date')
    page.click("#o-log-show")
    page.wait_for_selector("#o-log table")
    page.set_input_files("#o-file", files=[{"name": "x.csv", "mimeType": "text/csv", "buffer": (
        "姓名,身份证号,手机,楼栋,房号,租期开始,租期结束\n林,1,2,c02,101,x,y\n").encode()}])
    page.click("#o-import")
    page.wait_for_selector("#o-import-errors tr[data-row]")
    page.add_script_tag(path=str(axe))
    for lang in ("zh", "en"):
        result = page.evaluate("""() => axe.run(document.getElementById('tab-office'),
            {resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact,
             nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))""")
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert bad == [], (lang, bad)
        page.click("button.lang >> visible=true")
        page.wait_for_function("() => document.getElementById('tab-btn-office').textContent === 'Community office'"
                               if lang == "zh" else "() => true")


@pytest.mark.slow
def test_leases_ending_and_renewal_on_the_screen(broker: Broker, hub_factory, browser) -> None:
    hub = hub_factory(broker.url)
    hub.post("/api/doors/blocks", {"id": "c03", "units": ["101"]})
    r = hub.post("/api/doors/tenants", {"name": "Lin Xiao", "phone": "13800000042", "id_number": GOOD_ID,
                                        "block": "c03", "unit": "101", "lease_start": "2026-01-01",
                                        "lease_end": (datetime.now(UTC) + timedelta(days=20)).date().isoformat()})
    tid = r.json()["id"]
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    login(page, hub.url, *ADMIN)
    page.click("#tab-btn-office")
    page.wait_for_selector('#o-leases [data-days="7"]')
    assert page.query_selector(f'#o-leases tr[data-tenant="{tid}"]') is None  # not within 7 days
    page.click("#o-days-30")
    row = f'#o-leases tr[data-tenant="{tid}"]'
    page.wait_for_selector(row)
    page.fill(f"{row} .o-renew-date", "2020-01-01")  # in the past: refused, in the screen's language
    page.click(f'{row} button[data-act="renew"]')
    page.wait_for_selector(f"{row} .o-renew-errors li")
    assert page.get_attribute(f"{row} .o-renew-errors li", "data-code") in ("lease_order", "lease_past")
    page.fill(f"{row} .o-renew-date", "2028-06-30")
    page.click(f'{row} button[data-act="renew"]')
    page.wait_for_selector('#o-leases p[data-days="30"]')  # no lease ends within 30 days any more
    assert hub.get(f"/api/doors/tenants/{tid}")["lease_end"].startswith("2028-06-30T15:59:59")
    assert "2028年06月30日" in page.text_content(f'#o-tenants tr[data-tenant="{tid}"]')  # Chinese order
