"""The community office's API on a real SQLite file (MQTT faked; the wire is in tests/hub/test_office_browser):
real-name registration with its checks, the registration office's sheet (CSV, XLSX, and a file that is not
one), leases ending and renewal, and the door log by block."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import Workbook

from hub.doors.registration import ID_CHECK, ID_WEIGHTS, check_resident_id
from tests.hub.test_doors_hub import A, hub, sent, setup_block  # noqa: F401 - the fixture

__all__ = ["hub"]


def resident_id(first17: str) -> str:
    """A valid 18-character number for ``first17`` (its GB 11643 check character appended)."""
    return first17 + ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


GOOD = resident_id("11010519491231002")  # the standard's own example: 11010519491231002X
OTHER = resident_id("35020319900101123")


def wrong_digit(number: str) -> str:
    return number[:17] + next(c for c in "0123456789X" if c != number[17])


def tenants(client) -> list[dict]:
    return client.get("/api/doors/tenants").json()


def form(**over) -> dict:
    return {"name": "陈静", "phone": "13800000001", "id_number": GOOD, "block": "b01", "unit": "102",
            "lease_start": "2026-12-01", "lease_end": "2027-11-30", "require_id": True, **over}


def test_the_check_digit_of_the_standard() -> None:
    assert GOOD == "11010519491231002X"
    assert check_resident_id("11010519491231002x") == GOOD
    for bad, code in ((wrong_digit(GOOD), "id_check_digit"), ("1101051949123100", "id_format"),
                      ("110105194913310021", "id_birth")):
        with pytest.raises(Exception) as info:
            check_resident_id(bad)
        assert info.value.error.code == code  # type: ignore[attr-defined]


def test_registration_checks_each_field_and_stores_nothing_when_wrong(hub) -> None:
    client, heads = hub.client, hub.heads
    setup_block(client, heads)
    before = len(tenants(client))
    cases = [
        (form(id_number=wrong_digit(GOOD)), "id_number", "id_check_digit"),
        (form(lease_start="2027-06-01", lease_end="2027-05-31"), "lease_end", "lease_order"),
        (form(id_number=""), "id_number", "required"),
        (form(phone="12345"), "phone", "phone_format"),
        (form(name="  "), "name", "required"),
        (form(unit="999"), "unit", "unit_unknown"),
        (form(lease_end="31/12/2027"), "lease_end", "date_format"),
    ]
    for body, field, code in cases:
        r = client.post("/api/doors/tenants", json=body, headers=heads["wang"])
        assert r.status_code == 422, (body, r.text)
        errors = r.json()["detail"]["errors"]
        assert (errors[0]["field"], errors[0]["code"]) == (field, code), errors
        assert errors[0]["message"]  # words for an API caller; the screen translates the code
    assert len(tenants(client)) == before

    r = client.post("/api/doors/tenants", json=form(), headers=heads["wang"])
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["id_number"] == "**************002X" and t["source"] == "form"  # masked once saved
    # the lease is the district's days: from the start of 1 December to the end of 30 November (UTC+8)
    assert t["lease_start"].startswith("2026-11-30T16:00:00") and t["lease_end"].startswith("2027-11-30T15:59:59")
    # the same person twice in a unit: refused, nothing stored; in another unit it is another tenancy
    r = client.post("/api/doors/tenants", json=form(name="陈 静", phone="13900000000"), headers=heads["wang"])
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] == "duplicate"
    assert client.post("/api/doors/tenants", json=form(unit="101"), headers=heads["wang"]).status_code == 201
    assert len(tenants(client)) == before + 2
    assert GOOD not in client.get(f"/api/doors/tenants/{t['id']}").text


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


HEAD = ["姓名", "身份证号", "手机", "楼栋", "房号", "租期开始", "租期结束"]


def _import(client, heads, data: bytes, filename: str):
    return client.post("/api/doors/tenants/import", params={"filename": filename}, content=data,
                       headers={**heads["wang"], "Content-Type": "application/octet-stream"})


def test_an_import_with_bad_rows_lists_each_and_stores_nothing(hub) -> None:
    client, heads = hub.client, hub.heads
    setup_block(client, heads)
    before = len(tenants(client))
    bad = _csv([HEAD,
                ["王芳", GOOD, "13800000011", "b01", "101", "2026-12-01", "2027-11-30"],  # good
                ["李强", wrong_digit(OTHER), "13800000012", "b01", "102", "2026-12-01", "2027-11-30"],
                ["赵敏", OTHER, "13800000013", "b01", "102", "2027-12-01", "2027-11-30"],
                ["王芳", GOOD, "13800000011", "b01", "101", "2026-12-01", "2027-11-30"],  # row 2 again
                ["孙丽", OTHER, "13800000014", "b09", "101", "2026-12-01", "2027-11-30"]])
    r = _import(client, heads, bad, "登记表.csv")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "4 of 5 rows" in detail["message"] and "nothing was stored" in detail["message"]
    assert [(e["row"], e["code"]) for e in detail["errors"]] == [
        (3, "id_check_digit"), (4, "lease_order"), (5, "duplicate_in_file"), (6, "block_unknown")]
    assert len(tenants(client)) == before  # the good row was not stored either

    good = _csv([HEAD, ["王芳", GOOD, "138 0000 0011", "b01", "101", "2026/12/1", "2027-11-30"],
                 ["李强", OTHER, "0592-5550000", "b01", "102", "2026-12-01", "2027-11-30"]])
    r = _import(client, heads, good, "sheet.csv")
    assert r.status_code == 201 and r.json()["imported"] == 2, r.text
    assert {t["source"] for t in tenants(client)[-2:]} == {"import:sheet.csv"}
    # importing the same sheet again: each is already in the unit
    r = _import(client, heads, good, "sheet.csv")
    assert r.status_code == 422 and {e["code"] for e in r.json()["detail"]["errors"]} == {"duplicate"}


def test_xlsx_imports_and_a_file_that_is_not_one_is_a_clear_error(hub) -> None:
    client, heads = hub.client, hub.heads
    setup_block(client, heads)
    wb = Workbook()
    ws = wb.active
    ws.append(["name", "id_number", "phone", "block", "unit", "lease_start", "lease_end"])
    ws.append(["Zhou Min", OTHER, 13800000021, "b01", "101", datetime(2026, 12, 1), datetime(2027, 11, 30)])
    buf = io.BytesIO()
    wb.save(buf)
    r = _import(client, heads, buf.getvalue(), "roster.xlsx")
    assert r.status_code == 201 and r.json()["imported"] == 1, r.text
    t = tenants(client)[-1]
    assert t["phone"] == "13800000021" and t["lease_end"].startswith("2027-11-30T15:59:59")

    before = len(tenants(client))
    for data in (b"name,id_number\nnot,a workbook\n", b"PK\x03\x04 truncated zip"):
        r = _import(client, heads, data, "roster.xlsx")
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]["errors"]
        assert err["code"] == "file_not_xlsx" and ".xlsx" in err["message"]
    r = _import(client, heads, _csv([["who", "what"], ["a", "b"]]), "x.csv")
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] == "headings"
    assert _import(client, heads, b"abc", "x.pdf").json()["detail"]["errors"][0]["code"] == "file_type"
    assert len(tenants(client)) == before


def test_leases_ending_and_renewal_update_the_doors(hub) -> None:
    ingest, fake, client, heads = hub.ingest, hub.fake, hub.client, hub.heads
    setup_block(client, heads)
    now = datetime.now(UTC)
    ids = {}
    for name, days, unit in (("Soon", 5, "101"), ("Later", 20, "102"), ("Far", 200, "101")):
        r = client.post("/api/doors/tenants", headers=heads["wang"], json={
            "name": name, "phone": "13800000001", "block": "b01", "unit": unit,
            "lease_start": (now - timedelta(days=30)).isoformat(),
            "lease_end": (now + timedelta(days=days)).isoformat()})
        ids[name] = r.json()["id"]
    week = [t["name"] for t in client.get("/api/doors/leases/ending", params={"days": 7}).json()]
    month = [t["name"] for t in client.get("/api/doors/leases/ending", params={"days": 30}).json()]
    assert week == ["Soon"] and month == ["Soon", "Later"]

    # enrolled at door A: a renewal sends A its list again, with the new end
    from edge.protocol import Reply, Topics
    from tests.hub.test_doors_hub import feed
    client.post(f"/api/doors/tenants/{ids['Soon']}/enrol", json={"door": A}, headers=heads["wang"])
    (cmd,) = sent(fake, A, "access.enrol")
    feed(ingest, Topics.replies(A), Reply(command_id=cmd.id, ok=True, data={"slot": 3}).to_bytes())
    r = client.post(f"/api/doors/tenants/{ids['Soon']}/renew", json={"lease_end": "2030-06-30"},
                    headers=heads["wang"])
    assert r.status_code == 200 and r.json()["lease_end"].startswith("2030-06-30T15:59:59"), r.text
    (sync,) = sent(fake, A, "access.sync")
    assert sync.args["entries"] == [{"slot": 3, "tenant_id": ids["Soon"], "valid_from": sync.args["entries"][0][
        "valid_from"], "valid_until": "2030-06-30T15:59:59+00:00"}]
    assert [t["name"] for t in client.get("/api/doors/leases/ending", params={"days": 7}).json()] == []
    r = client.post(f"/api/doors/tenants/{ids['Far']}/renew", json={"lease_end": "2020-01-01"}, headers=heads["wang"])
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] in ("lease_order", "lease_past")
    # the door log by block and by tenant, and its CSV
    by_block = client.get("/api/doors/audit", params={"block": "b01"}).json()
    assert {"tenant.renew", "tenant.add", "access.enrol"} <= {x["kind"] for x in by_block}
    assert client.get("/api/doors/audit", params={"block": "b02"}).json() == [] or all(
        x["block"] == "b02" for x in client.get("/api/doors/audit", params={"block": "b02"}).json())
    r = client.get("/api/doors/audit.csv", params={"tenant": ids["Soon"]})
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert {row["kind"] for row in rows} >= {"tenant.add", "tenant.renew"}
