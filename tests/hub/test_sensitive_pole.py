"""A sensitive period on real processes (mosquitto, `pingan-hub serve`, `pingan-edge run` with fake hardware):
the detection profile reaches the pole through the existing config.update path (the pole tries it and confirms
it), a hub restarted in the middle of the period does not push it a second time, and at the end the pole gets
its previous config back by itself, the same way."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import yaml

from edge.config import SITE_FIELDS
from edge.protocol import utcnow
from tests.conftest import wait_for

FAST_TRIAL = {"trial_s": 6, "settle_s": 1, "max_boots": 2}
ZONE = {"name": "lane", "points": [[0, 0], [1, 0], [1, 1], [0, 1]], "schedule": ["22:00-06:00"], "loiter_s": 120}


def _pushable(proc: Any) -> str:
    """The pole's config as an installer pushes it: without the site fields."""
    cfg = yaml.safe_load(proc.config_path.read_text())
    for field in SITE_FIELDS:
        section, _, name = field.rpartition(".")
        (cfg.get(section, {}) if section else cfg).pop(name, None)
    if cfg.get("mqtt") == {}:
        del cfg["mqtt"]
    return yaml.safe_dump(cfg)


def _confirmed_zone(node: Any) -> dict[str, Any]:
    cfg = yaml.safe_load((node.data_dir / "config" / "confirmed.yaml").read_text())
    return cfg["vision"]["zones"][0]  # type: ignore[no-any-return]


def _config_commands(hub: Any, node: str) -> list[tuple[str, str]]:
    con = sqlite3.connect(hub.data_dir / "hub.db")
    try:
        return con.execute("SELECT id, operator FROM commands WHERE node = ? AND name = 'config.update' "
                           "ORDER BY issued_at", (node,)).fetchall()
    finally:
        con.close()


def _push(hub: Any, period: str, node: str, phase: str) -> dict[str, Any] | None:
    pushes = hub.get(f"/api/sensitive-periods/{period}")["pushes"]
    return next((p for p in pushes if p["node"] == node and p["phase"] == phase), None)


def test_the_profile_reaches_a_real_pole_once_and_is_reverted_at_the_end(broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url, sensitive_tick_s="0.5")
    node = node_factory("pole-s1", broker.url, hub.register("pole-s1"), updates=FAST_TRIAL,
                        camera={"fps": 1, "burst_s": 0},
                        vision={"detector": "ssdlite_person", "threads": 1, "zones": [ZONE]})
    hub.wait_online("pole-s1")
    # the hub knows a pole's config from a push it applied: the installer's own config, pushed once
    base = hub.post("/api/nodes/pole-s1/config", {"yaml": _pushable(node)})
    assert base.status_code == 202, base.text
    wait_for(lambda: any(u["command_id"] == base.json()["command_id"] and u["state"] == "applied"
                         for u in hub.get("/api/nodes/pole-s1/config/updates")), 60, 0.3, "the base config applied")

    end = (utcnow() + timedelta(seconds=75)).isoformat()
    r = hub.post("/api/sensitive-periods", {"end": end, "reason": "summit week",
                                            "profile": {"loiter_s": 20, "night_schedule": ["18:00-07:00"]}})
    assert r.status_code == 201, r.text
    period = r.json()["id"]
    applied = wait_for(lambda: (p := _push(hub, period, "pole-s1", "apply")) and p["outcome"] in
                       ("applied", "rolled_back", "refused", "expired") and p, 60, 0.3, "the profile's outcome")
    assert applied["outcome"] == "applied", applied
    assert _confirmed_zone(node) == {**ZONE, "loiter_s": 20, "schedule": ["18:00-07:00"]}
    assert hub.get("/api/sensitive-periods/active")[0]["id"] == period

    hub.stop()  # the hub restarts in the middle of the period
    hub.start()
    wait_for(lambda: hub.get("/api/sensitive-periods/active"), 10, 0.2, "the period still in force")
    hub.wait_online("pole-s1")
    sent = _config_commands(hub, "pole-s1")
    assert [op for _, op in sent] == ["admin", f"sensitive-period:{period}"]

    reverted = wait_for(lambda: (p := _push(hub, period, "pole-s1", "revert")) and p["outcome"] in
                        ("applied", "rolled_back", "refused", "expired") and p, 120, 0.5, "the revert's outcome")
    assert reverted["outcome"] == "applied", reverted
    assert _confirmed_zone(node) == ZONE  # the pole's previous values, back
    assert [op for _, op in _config_commands(hub, "pole-s1")] == ["admin"] + [f"sensitive-period:{period}"] * 2
    assert hub.get(f"/api/sensitive-periods/{period}")["state"] == "ended"
    assert hub.get("/api/sensitive-periods/active") == []
    actions = {e["action"] for e in hub.get("/api/audit", limit=500)["items"]}
    assert {"sensitive.create", "sensitive.start", "sensitive.apply.sent", "sensitive.end",
            "sensitive.revert.sent", "command.config.update"} <= actions, actions
