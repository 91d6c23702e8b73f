"""The hub's error sentences reach the console in its language (issue 17: every string in both languages).

The hub refuses with one sentence (``detail``): in English where its code wrote it so, or "English / 中文".
The console (hub/web/server-errors.js) shows the half of a two-language sentence that matches its language
and translates an English-only one through its table. This test reads, from the hub's source, every sentence
raised on the routes the console's screens call, and fails on one in English only that the table lacks (a
new or reworded error needs its Chinese); and it runs the console's translation as the browser does."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.hub.test_console_modules import WEB, node_or_skip

ROOT = Path(__file__).resolve().parents[2]
# what the console's screens call: alarms and their dispatches, staff and login, the fleet and config pushes,
# live view, the office's doors, reports, self-test, history, the map, and every router
SCOPE = ["hub/alarms", "hub/auth/service.py", "hub/nodes/fleet.py", "hub/nodes/config_push.py",
         "hub/live/video/service.py", "hub/doors/service.py", "hub/reports/service.py", "hub/responders/service.py",
         "hub/selftest", "hub/sensitive", "hub/history", "hub/map", "hub/api", "hub/responders", "hub/patrols"]
# programming errors and start-up settings: never an answer's detail
NOT_ANSWERS = {"RuntimeError", "TimeoutError", "ValueError", "TypeError", "SettingsError", "AssertionError",
               "KeyError"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def _template(node: ast.expr) -> str | None:
    """A message as written, its interpolated values as ``{}``; None when it is not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return None if left is None or right is None else left + right
    return None


def raised_sentences() -> dict[str, str]:
    """Every literal sentence raised in SCOPE → where (file:line)."""
    out: dict[str, str] = {}
    for base in SCOPE:
        path = ROOT / base
        for f in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                    continue
                fn = node.exc.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                if name in NOT_ANSWERS:
                    continue
                args = [*node.exc.args, *(k.value for k in node.exc.keywords if k.arg == "detail")]
                texts = [t for t in map(_template, args) if t is not None]
                # TokenRefused("stale", "... / 中文"): the reason code is for the audit; the sentence is shown
                shown = next((t for t in texts if HAN.search(t)), texts[0] if texts else None)
                if shown is not None:
                    out.setdefault(shown, f"{f.relative_to(ROOT)}:{node.lineno}")
    return out


def run_js(body: str) -> object:
    script = f"const m = await import('{(WEB / 'server-errors.js').as_uri()}'); console.log(JSON.stringify({body}));"
    run = subprocess.run([node_or_skip(), "--input-type=module", "-e", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def table() -> dict[str, str]:
    return run_js("m.ZH")  # type: ignore[return-value]


def test_the_scan_finds_the_sentences_it_should() -> None:
    found = raised_sentences()
    assert "alarm is already {}" in found and "the password must have at least 8 characters" in found
    assert any(HAN.search(s) for s in found)  # the two-language ones are seen too


def test_every_english_only_sentence_the_console_can_show_has_its_chinese(table) -> None:
    missing = {s: at for s, at in raised_sentences().items() if not HAN.search(s) and s not in table}
    assert not missing, ("English only, shown to the console's staff: add each to hub/web/server-errors.js ZH "
                         f"(or write it as 'English / 中文' where it is raised): {missing}")


def test_the_table_holds_no_sentence_the_hub_no_longer_says(table) -> None:
    stale = sorted(set(table) - set(raised_sentences()))
    assert not stale, f"in hub/web/server-errors.js but raised nowhere any more: {stale}"
    for en, zh in table.items():
        assert HAN.search(zh), en
        assert zh.count("{") == en.count("{}"), (en, zh)  # every value the hub puts in is put back, once


def test_the_console_shows_a_sentence_in_its_language() -> None:
    shown = run_js("""[
        m.serverText('alarm is already acknowledged', 'zh'),
        m.serverText('alarm is already acknowledged', 'en'),
        m.serverText("no frame 3 of event e-1's burst", 'zh'),
        m.serverText('user li exists (use `pingan-hub users passwd li`)', 'zh'),
        m.serverText('give both lat and lon, or neither / 经纬度需同时填写', 'zh'),
        m.serverText('give both lat and lon, or neither / 经纬度需同时填写', 'en'),
        m.serverText('broker_url must look like mqtts://HOST:8883 / 地址应为 mqtts://主机:8883', 'zh'),
        m.serverText('something the hub never said', 'zh'),
    ]""")
    assert shown == [
        "该报警已处于“acknowledged”状态",
        "alarm is already acknowledged",
        "事件 e-1 的连拍中没有第 3 帧",
        "用户 li 已存在（改密码请用 `pingan-hub users passwd li`）",
        "经纬度需同时填写",
        "give both lat and lon, or neither",
        "地址应为 mqtts://主机:8883",
        "something the hub never said",  # unknown: as it came, never hidden
    ]


def test_a_malformed_request_is_shown_by_its_problem_type() -> None:
    shown = run_js("""[
        m.problemText({type: 'string_too_short', msg: 'String should have at least 8 characters',
                       ctx: {min_length: 8}}, 'zh'),
        m.problemText({type: 'string_too_short', msg: 'String should have at least 8 characters',
                       ctx: {min_length: 8}}, 'en'),
        m.problemText({type: 'value_error', msg: 'Value error, no user li'}, 'zh'),
        m.problemText({type: 'missing', msg: 'Field required'}, 'zh'),
        m.problemText({type: 'some_new_type', msg: 'Something new'}, 'zh'),
    ]""")
    assert shown == ["至少需要 8 个字符", "String should have at least 8 characters", "没有用户 li", "必填",
                     "Something new"]


def test_the_problem_types_are_the_ones_pydantic_reports() -> None:
    """A misspelt type in the table would never match: each is one pydantic knows."""
    from pydantic_core.core_schema import ErrorType

    known = set(ErrorType.__args__)  # type: ignore[attr-defined]
    table = run_js("Object.keys(m.PROBLEM_ZH)")
    assert isinstance(table, list) and not set(table) - known, set(table) - known


def test_the_phone_pages_show_any_detail_in_their_language() -> None:
    """detailText: what the responders' app and the patrol page show, whatever shape the refusal came in."""
    shown = run_js("""[
        m.detailText('no shift of your team now: you can check in during a shift', 'zh'),
        m.detailText({message: 'this sticker is out of date: print a new one / 签到码已过期，请重新打印'}, 'zh'),
        m.detailText({message: 'this sticker is out of date: print a new one / 签到码已过期，请重新打印'}, 'en'),
        m.detailText([{type: 'less_than_equal', loc: ['body', 'lat'], msg: 'Input should be less than or equal '
                       + 'to 90', ctx: {le: 90}}], 'zh'),
        m.detailText(undefined, 'zh'),
    ]""")
    assert shown == ["您的队伍现在没有班次：请在班次内签到", "签到码已过期，请重新打印",
                     "this sticker is out of date: print a new one", "lat: 应不大于 90", ""]
