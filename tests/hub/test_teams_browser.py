"""The teams and shifts screen (issue 18) in a real browser against a real hub: an admin makes a team with its
grids and weekday shifts, a bad shift is refused on the page, a responder login joins the team with a phone
number that lands in the one phone book, an operator reads it all without the forms; in both languages, with
no overlay on a control and no serious axe-core finding at both sizes."""

from __future__ import annotations

import pytest

from hub.transport.broker import Broker
from tests.conftest import ADMIN, ensure_user
from tests.hub.test_console_browser import AXE_RUN, axe_ready
from tests.web.test_browser import COVERED, OPERATOR, SIZES, launched_chromium, login, watch_errors


@pytest.fixture()
def browser():
    yield from launched_chromium()


def _open_teams(page) -> None:
    page.click('.tab[data-tab="teams"]')
    page.wait_for_selector("#tab-teams:not([hidden])")


def _checked(page) -> None:
    for size in SIZES:
        page.set_viewport_size(size)
        page.wait_for_timeout(200)
        assert page.evaluate(COVERED) == [], size
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.add_script_tag(url="/static/axe.min.js")
        assert page.evaluate(AXE_RUN) == [], size


def test_an_admin_makes_a_team_with_shifts_and_assigns_a_responder(broker: Broker, hub_factory, browser) -> None:
    hub = hub_factory(broker.url)
    ensure_user(hub.data_dir, "zhang", "zhang-password-1", "responder")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = browser.new_page(viewport=SIZES[0])
    errors = watch_errors(page)
    axe_ready(page)
    login(page, hub.url, *ADMIN)
    if page.evaluate("pingan.lang") != "zh":
        page.click("header .lang")
    _open_teams(page)
    assert page.inner_text('.tab[data-tab="teams"]') == "队伍"
    page.wait_for_selector("#tm-teams p")  # "no teams yet"

    page.fill("#tm-id", "vol1")
    page.fill("#tm-name", "东门志愿者")
    page.select_option("#tm-kind", "volunteer")
    page.fill("#tm-grids", "G01，G02")
    page.click("#tm-add-shift")  # no day picked: said on the page, nothing added
    assert page.inner_text("#tm-error") == "请至少选择一天"
    for day in (0, 1, 2, 3, 4):
        page.check(f'.tm-days input[data-day="{day}"]')
    page.fill("#tm-start", "08:00")
    page.fill("#tm-end", "08:00")
    page.click("#tm-add-shift")
    assert page.inner_text("#tm-error") == "开始与结束不能相同"
    page.fill("#tm-end", "25:00")
    page.click("#tm-add-shift")
    assert "HH:MM" in page.inner_text("#tm-error")
    page.fill("#tm-end", "20:00")
    page.click("#tm-add-shift")
    page.check('.tm-days input[data-day="5"]')
    page.fill("#tm-start", "20:00")
    page.fill("#tm-end", "08:00")
    page.click("#tm-add-shift")
    assert page.locator("#tm-draft li").count() == 6
    assert "周六 20:00–08:00（跨夜）" in page.inner_text("#tm-draft")
    page.click("#tm-save")
    page.wait_for_selector('#tm-table tr[data-team="vol1"]')
    row = page.inner_text('#tm-table tr[data-team="vol1"]')
    assert "东门志愿者" in row and "志愿者" in row and "G01, G02" in row and "周一 08:00–20:00" in row
    team = hub.get("/api/teams")[0]
    assert team["grids"] == ["G01", "G02"] and len(team["shifts"]) == 6
    assert {"weekday": 5, "start": "20:00", "end": "08:00"} in team["shifts"]

    # the responder joins the team; a bad number is refused on the page
    page.select_option("#tm-user", "zhang")
    page.fill("#tm-person", "张伟")
    page.fill("#tm-phone", "12345")
    page.click("#tm-assign button[type=submit]")
    assert page.inner_text("#tm-people-error") == "手机号应为 11 位（1 开头）或留空"
    page.fill("#tm-phone", "138 0000 0001")
    page.click("#tm-assign button[type=submit]")
    page.wait_for_selector('#tm-people-table tr[data-user="zhang"]')
    assert "13800000001" in page.inner_text('#tm-people-table tr[data-user="zhang"]')
    assert "张伟" in page.inner_text('#tm-table tr[data-team="vol1"]')  # listed as a member
    [zhang] = hub.get("/api/responders")
    assert zhang["phone"] == "13800000001" and zhang["team"] == "vol1"

    # editing brings the team back into the form with its shifts; a removed shift is gone after saving
    page.click('#tm-table [data-edit="vol1"]')
    assert page.input_value("#tm-name") == "东门志愿者" and page.locator("#tm-draft li").count() == 6
    page.click('#tm-draft [data-remove="5"]')
    page.click("#tm-save")
    page.wait_for_function("() => !document.querySelector('#tm-table tr[data-team=\"vol1\"]').textContent"
                           ".includes('周六')")
    assert len(hub.get("/api/teams")[0]["shifts"]) == 5
    _checked(page)

    page.click("header .lang")
    _open_teams(page)
    assert page.inner_text('.tab[data-tab="teams"]') == "Teams"
    page.wait_for_selector('#tm-table tr[data-team="vol1"]')
    assert "Mon 08:00–20:00" in page.inner_text("#tm-table") and "volunteers" in page.inner_text("#tm-table")
    assert not errors, errors

    # an operator reads the teams but gets no forms (the API refuses them too)
    op = browser.new_page(viewport=SIZES[0])
    op_errors = watch_errors(op)
    axe_ready(op)
    login(op, hub.url, *OPERATOR)
    _open_teams(op)
    op.wait_for_selector('#tm-table tr[data-team="vol1"]')
    assert op.locator("#tm-form").count() == 0 and op.locator("#tm-assign").count() == 0
    assert op.locator("[data-edit]").count() == 0
    _checked(op)
    assert not op_errors, op_errors
