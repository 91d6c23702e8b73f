"""The console's modules (hub/web): every string in both languages, every key the code and the page use
defined, the vendored libraries as npm ships them, and the static route serving the modules' folders and
nothing else."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "hub" / "web"
STRING_MODULES = ["strings.js", "live.js", "citylink.js", "brokerlimit.js",
                  *sorted(f"screens/{p.name}" for p in (WEB / "screens").glob("*.js"))]


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is missing in CI: scripts/bootstrap.sh installs nodejs")
        pytest.skip("node is not installed (apt-get install nodejs)")
    return node


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[str, dict[str, str]]]:
    """Each module's STRINGS, as the browser would import them (the modules touch no DOM when imported)."""
    files, base = json.dumps(STRING_MODULES), WEB.as_uri()
    script = (f"const out = {{}}; for (const f of {files}) {{ out[f] = (await import('{base}/' + f)).STRINGS; }} "
              "console.log(JSON.stringify(out));")
    run = subprocess.run([node_or_skip(), "--input-type=module", "-e", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_module_has_the_same_keys_in_both_languages(tables) -> None:
    for module, strings in tables.items():
        assert strings, f"{module} exports no STRINGS"
        zh, en = set(strings["zh"]), set(strings["en"])
        assert zh == en, f"{module}: only in Chinese {sorted(zh - en)}, only in English {sorted(en - zh)}"
        for lang in ("zh", "en"):
            empty = [k for k, v in strings[lang].items() if not v.strip()]
            assert not empty, f"{module} {lang}: empty strings {empty}"


def test_a_key_in_two_modules_says_the_same(tables) -> None:
    """All tables merge into one: a key defined twice with different words would depend on load order."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for module, strings in tables.items():
        for lang in ("zh", "en"):
            for key, text in strings[lang].items():
                if (lang, key) in seen:
                    other, other_text = seen[(lang, key)]
                    assert other_text == text, f"{key!r} ({lang}) is {other_text!r} in {other}, {text!r} in {module}"
                seen[(lang, key)] = (module, text)


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [WEB / "app.js", WEB / "live.js", WEB / "citylink.js", *(WEB / "screens").glob("*.js")]:
        keys |= set(re.findall(r"\bt\('([a-z0-9_]+)'\)", path.read_text(encoding="utf-8")))
        keys |= set(re.findall(r'data-i18n(?:-ph)?="([a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    keys |= set(re.findall(r'data-i18n(?:-ph)?="([a-z0-9_]+)"', (WEB / "index.html").read_text(encoding="utf-8")))
    return keys


def test_every_key_the_code_and_the_page_use_is_defined(tables) -> None:
    merged = {k for s in tables.values() for k in s["zh"]}
    assert used_keys(), "the pattern finds no t('...') calls: it is broken"
    missing = sorted(used_keys() - merged)
    assert not missing, f"used but defined in no STRINGS table: {missing}"


def test_the_key_families_built_at_run_time_are_complete(tables) -> None:
    """Keys made from data: every event kind of the contract (the history lists them all), stage, outcome,
    config push state, role, node state, tab."""
    merged = {k for s in tables.values() for k in s["zh"]}
    schema = json.loads((WEB / "contract.schema.json").read_text(encoding="utf-8"))
    wanted = {"k_" + k.replace(".", "_") for k in schema["mqtt"]["event_data"]}
    wanted |= {f"stage_{s}" for s in ("open", "acknowledged", "dispatched", "on_scene", "resolved")}
    wanted |= {f"o_{o}" for o in ("assisted", "false_alarm", "crime", "other", "test", "recovered")}
    wanted |= {f"c_{s}" for s in ("sent", "accepted", "applied", "rolled_back", "refused", "expired")}
    wanted |= {f"r_{r}" for r in ("operator", "installer", "admin")}
    wanted |= {f"st_{s}" for s in ("online", "offline", "unknown", "removed")}
    wanted |= {f"tab_{p.stem}" for p in (WEB / "screens").glob("*.js")}
    missing = sorted(k for k in wanted if k not in merged)
    assert not missing, missing


def test_the_vendored_libraries_are_the_pinned_npm_files() -> None:
    vendor = WEB / "vendor"
    sums = dict(reversed(line.split(maxsplit=1)) for line in (vendor / "SHA256SUMS").read_text().splitlines())
    files = {"./" + p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()
             and p.name not in ("README.md", "SHA256SUMS")}
    assert files == set(sums), "vendor/ and SHA256SUMS list different files"
    for name, digest in sums.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    lock = json.loads((ROOT / "tools" / "web" / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/leaflet"]["version"] == "1.9.4"
    assert lock["node_modules/leaflet.markercluster"]["version"] == "1.5.3"
    modules = ROOT / "tools" / "web" / "node_modules"
    if modules.is_dir():  # installed by scripts/bootstrap.sh: the vendored files are byte for byte npm's
        pairs = {"./leaflet/leaflet.js": "leaflet/dist/leaflet.js", "./leaflet.markercluster/leaflet.markercluster.js":
                 "leaflet.markercluster/dist/leaflet.markercluster.js"}
        for ours, theirs in pairs.items():
            assert (vendor / ours).read_bytes() == (modules / theirs).read_bytes(), ours


def test_the_generated_types_follow_the_contract() -> None:
    if not (ROOT / "tools" / "web" / "node_modules" / "json-schema-to-typescript").is_dir():
        if os.environ.get("CI"):
            pytest.fail("tools/web/node_modules missing in CI: scripts/bootstrap.sh runs npm ci")
        pytest.skip("npm ci --prefix tools/web first")
    run = subprocess.run([node_or_skip(), str(ROOT / "tools" / "web" / "gen-types.mjs"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.fixture()
def client(tmp_path: Path):
    with TestClient(create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False))) as c:
        yield c


def test_the_static_route_serves_the_modules_and_the_vendored_files_only(client: TestClient) -> None:
    for path, kind in [("/static/console.js", "text/javascript"), ("/static/screens/alarms.js", "text/javascript"),
                       ("/static/vendor/leaflet/leaflet.js", "text/javascript"),
                       ("/static/vendor/leaflet/images/layers.png", "image/png")]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
    for path in ["/static/screens/../console.py", "/static/screens/%2e%2e/console.py", "/static/types/contract.d.ts",
                 "/static/vendor/leaflet/LICENSE", "/static/store/x.js", "/static/screens/.x.js",
                 "/static/vendor/a/b/c/d.js", "/static/screens/nope.js", "/static/vendor/leaflet%00.js"]:
        assert client.get(path).status_code == 404, path
