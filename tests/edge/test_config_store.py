"""The node's pending/confirmed configs and boot counter (edge/agent/configstore.py), start by start,
including a power cut at each step: every state a crash can leave is finished by the next start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.agent.configstore import ConfigStore, update_refusals
from edge.config import NodeConfig, load_node_config


def _cfg(tmp_path: Path, **top) -> dict:
    cfg = {"node": {"id": "pole-01", "kind": "alarm_post", "place": "Old gate"},
           "pins": {"factory": "mock"}, "data_dir": str(tmp_path / "data"),
           "updates": {"max_boots": 2}}
    cfg.update(top)
    return cfg


@pytest.fixture()
def setup(tmp_path: Path):
    base_path = tmp_path / "node.yaml"
    base_path.write_text(yaml.safe_dump(_cfg(tmp_path)))
    base = load_node_config(base_path)
    return base_path, base, ConfigStore(base_path, base.data_dir)


def _new_text(tmp_path: Path, place: str = "New gate") -> str:
    return yaml.safe_dump(_cfg(tmp_path, node={"id": "pole-01", "kind": "alarm_post", "place": place}))


def test_no_update_runs_the_installers_file(setup) -> None:
    base_path, base, store = setup
    boot = store.boot(base)
    assert boot.trial is None and boot.reports == [] and boot.cfg.node.place == "Old gate"


def test_pending_is_counted_then_confirmed_and_survives_restarts(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage(_new_text(tmp_path), "cmd-1")
    boot = store.boot(base)
    assert boot.trial is not None and boot.trial.boots == 1 and boot.cfg.node.place == "New gate"
    data = store.promote()
    assert data["command_id"] == "cmd-1" and data["boots"] == 1
    store.reported()
    assert not store.pending.exists() and not store.state_path.exists()
    again = store.boot(base)  # later starts use the confirmed config, no trial, nothing to report
    assert again.trial is None and again.reports == [] and again.cfg.node.place == "New gate"


def test_too_many_failed_starts_roll_back_with_the_last_failure(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage(_new_text(tmp_path), "cmd-2")
    for n in (1, 2):
        boot = store.boot(base)
        assert boot.trial is not None and boot.trial.boots == n
        store.record_failure(f"start {n}: could not connect")
    boot = store.boot(base)  # start 3 > max_boots 2
    assert boot.trial is None and boot.cfg.node.place == "Old gate"
    [(kind, data)] = boot.reports
    assert kind == "config.rolled_back" and data["command_id"] == "cmd-2"
    assert "start 2: could not connect" in data["reason"] and data["boots"] == 3
    assert not store.pending.exists()
    # a crash before the report reached the outbox: the next start reports it again
    assert store.boot(base).reports[0][0] == "config.rolled_back"
    store.reported()
    assert store.boot(base).reports == []


def test_a_crash_that_records_nothing_still_counts(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage(_new_text(tmp_path), "cmd-3")
    store.boot(base)
    store.boot(base)  # killed twice (SIGKILL, watchdog) without a word
    boot = store.boot(base)
    assert boot.reports[0][0] == "config.rolled_back"
    assert "did not come up" in boot.reports[0][1]["reason"]


def test_unparseable_pending_rolls_back_at_once(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage("node: [this is not\n", "cmd-4")
    boot = store.boot(base)
    assert boot.trial is None and boot.cfg.node.place == "Old gate"
    assert boot.reports[0][0] == "config.rolled_back"
    assert "not valid YAML" in boot.reports[0][1]["reason"] and boot.reports[0][1]["boots"] == 1


def test_power_cut_inside_promote_is_finished_at_the_next_start(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage(_new_text(tmp_path), "cmd-5")
    store.boot(base)
    state = store.state()
    state["outcome"] = "applied"
    store._write_state(state)  # promote() wrote its decision, then the power went
    boot = store.boot(base)
    assert boot.cfg.node.place == "New gate" and boot.trial is None
    assert boot.reports[0][0] == "config.applied" and not store.pending.exists()


def test_an_installers_later_edit_wins_over_the_remote_config(tmp_path: Path, setup) -> None:
    base_path, base, store = setup
    store.stage(_new_text(tmp_path), "cmd-6")
    store.boot(base)
    store.promote()
    store.reported()
    base_path.write_text(yaml.safe_dump(_cfg(tmp_path, heartbeat_s=30)))  # edited by hand on the SD card
    edited = load_node_config(base_path)
    assert store.boot(edited).cfg.node.place == "Old gate"


def test_what_a_remote_update_may_not_change(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PINGAN_NODE_KEY", "k" * 32)
    cur = NodeConfig.model_validate(_cfg(tmp_path))
    bad = NodeConfig.model_validate(_cfg(tmp_path, node={"id": "pole-02", "kind": "alarm_post"},
                                         data_dir=str(tmp_path / "elsewhere"), key_env="NO_SUCH_KEY_VAR"))
    reasons = " | ".join(update_refusals(cur, bad))
    assert "node.id" in reasons and "data_dir" in reasons and "command-signing key" in reasons
    assert update_refusals(cur, NodeConfig.model_validate(_cfg(tmp_path, heartbeat_s=3))) == []
    certs = NodeConfig.model_validate(_cfg(tmp_path, mqtt={"url": "mqtts://hub:8884", "ca_file": "/nope/ca.crt",
                                                           "client_cert": "/nope/client.crt"}))
    reasons = " | ".join(update_refusals(cur, certs))
    assert "mqtt.ca_file /nope/ca.crt is not a file" in reasons and "no client-certificate key" in reasons


def test_doctor_checks_the_config_in_effect(tmp_path: Path, setup) -> None:
    from edge.installer.doctor import Doctor

    base_path, base, store = setup
    doctor = Doctor(base_path)
    assert str(base_path) in doctor.check_config().detail.split("in effect: ")[1]
    store.stage(_new_text(tmp_path), "cmd-7")
    store.boot(base)
    assert "config.update cmd-7 is pending (start 1 of 2 tried)" in Doctor(base_path).check_config().detail
    store.promote()
    store.reported()
    doctor = Doctor(base_path)
    finding = doctor.check_config()
    assert "confirmed.yaml (pushed by the hub)" in finding.detail and finding.status == "ok"
    assert doctor.cfg is not None and doctor.cfg.node.place == "New gate"
